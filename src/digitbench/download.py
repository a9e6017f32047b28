"""Fetching the data sets from the public mirrors that trusted loaders use.

Each file is fetched to a temporary name in the target folder, its decompressed
payload checked against the known SHA-256 (:data:`digitbench.data.CHECKSUMS`), and only
then renamed to its real name, so an interrupted or corrupt download never leaves a
file that looks valid. On any failure (HTTP error, timeout, short transfer, wrong
content, wrong checksum) the next mirror is tried; when all fail, the error names
every mirror and why it failed.

The environment variable ``DIGITBENCH_MIRRORS`` replaces the built-in list: base URLs
separated by commas or spaces, each followed by the file names (``.../mnist/``), e.g. an
internal copy, or a local server in the tests.
"""

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .data import CHECKSUMS, IMAGE_MAGIC, LABEL_MAGIC, SPLITS, find_file, read_idx
from .errors import DataError, DownloadError

#: Base URLs, tried in order. torchvision and TensorFlow's loaders use the same.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}
#: Seconds without progress after which a mirror counts as stalled.
TIMEOUT_SECONDS = 30
MIRRORS_ENV = "DIGITBENCH_MIRRORS"
CHUNK = 1 << 16
#: The largest .gz any mirror should send (train images are under 27 MB).
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


def _magic_for(name):
    return IMAGE_MAGIC if "images" in name else LABEL_MAGIC


def mirrors_for(dataset):
    """The base URLs to try for ``dataset``: $DIGITBENCH_MIRRORS if set, else MIRRORS."""
    env = os.environ.get(MIRRORS_ENV, "").replace(",", " ").split()
    if not env:
        return MIRRORS[dataset]
    for url in env:
        if not url.startswith(("http://", "https://")):
            raise DownloadError(f"{MIRRORS_ENV}: {url!r} is not an http:// or https:// URL")
    return tuple(url if url.endswith("/") else url + "/" for url in env)


def _fetch(url, dest, progress, timeout):
    """Stream ``url`` into the open binary file ``dest``, with a tqdm bar."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "digitbench"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.headers.get_content_type() == "text/html":
            raise DownloadError("the server sent an HTML page, not the .gz file")
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            raise DownloadError(f"server declares {total} bytes, more than any data file")
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  disable=not progress, leave=False) as bar:
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise DownloadError("server sent more bytes than any data file has")
                dest.write(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(f"transfer cut short: {received} of {total} bytes")


def download_file(name, folder, dataset="mnist", mirrors=None, progress=True, timeout=None):
    """Download ``name`` (e.g. "train-images-idx3-ubyte") as ``folder/name.gz``.

    ``timeout`` is in seconds without data (default :data:`TIMEOUT_SECONDS`). Returns
    the final path. Raises DownloadError naming each mirror tried and why.
    """
    folder = Path(folder)
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    checksum = CHECKSUMS[dataset][name]
    final = folder / f"{name}.gz"
    failures = []
    for base in mirrors if mirrors is not None else mirrors_for(dataset):
        url = base + f"{name}.gz"
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        except OSError as e:
            raise DownloadError(f"{folder}: cannot write a file there ({e.strerror or e})") from None
        try:
            with os.fdopen(fd, "wb") as dest:
                _fetch(url, dest, progress, timeout)
            read_idx(tmp, _magic_for(name), checksum=checksum, compressed=True)
            os.chmod(tmp, 0o644)  # mkstemp made it private; a data file is not secret
            os.replace(tmp, final)
            return final
        except urllib.error.HTTPError as e:
            failures.append(f"{url}: HTTP {e.code} {e.reason}")
        except TimeoutError:
            failures.append(f"{url}: no data for {timeout:g} s (timed out)")
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            if isinstance(reason, TimeoutError):
                reason = f"no answer for {timeout:g} s (timed out)"
            failures.append(f"{url}: {reason or type(e).__name__}")
        except DownloadError as e:
            failures.append(f"{url}: {e}")
        except DataError as e:  # from read_idx, whose message starts with the .part file's name
            failures.append(f"{url}: {str(e).split(': ', 1)[-1]}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(f"could not download {name}.gz for {dataset}; tried " + "; ".join(failures))


def download_dataset(folder, dataset="mnist", progress=True, mirrors=None, timeout=None):
    """Fetch whichever of the four files are missing from ``folder``.

    Files already present are checked and, when their payload fails the checksum
    (a cache corrupted after download), deleted and fetched again. Returns the folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{folder}: cannot create the data folder ({e.strerror or e})") from None
    sums = CHECKSUMS[dataset]
    for name in (n for pair in SPLITS.values() for n in pair):
        while (present := find_file(folder, name)) is not None:
            try:
                read_idx(present, _magic_for(name), checksum=sums[name])
                break
            except DataError:
                try:
                    present.unlink()  # corrupt cache: try the other copy, else fetch it again
                except OSError as e:
                    raise DataError(f"{present}: fails its checksum and cannot be deleted "
                                    f"({e.strerror or e})") from None
        if present is None:
            download_file(name, folder, dataset, mirrors=mirrors, progress=progress, timeout=timeout)
    return folder
