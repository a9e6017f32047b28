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
import time
import urllib.error
import urllib.request
from pathlib import Path

from .data import CHECKSUMS, IMAGE_MAGIC, LABEL_MAGIC, SPLITS, read_idx
from .errors import DataError, DownloadError, ForeignFileError, UsageError
from .files import check_destination, write_file

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
#: Seconds one file's transfer may take in all (a mirror trickling a byte at a time
#: never stalls, but must end too): 27 MB at 50 KB/s fits.
TOTAL_SECONDS = 600
MIRRORS_ENV = "DIGITBENCH_MIRRORS"
#: The variable that names a data folder (read by :mod:`digitbench.datasets`).
DATA_ENV = "DIGITBENCH_DATA"
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


def _fetch(url, dest, progress, timeout, total_seconds=None):
    """Stream ``url`` into the open binary file ``dest``, with a tqdm bar.

    ``timeout``: seconds without data; ``total_seconds`` (default :data:`TOTAL_SECONDS`):
    seconds for the whole transfer, checked after every piece received.
    """
    from tqdm import tqdm

    total_seconds = TOTAL_SECONDS if total_seconds is None else total_seconds
    deadline = time.monotonic() + total_seconds
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
            while chunk := response.read1(CHUNK):  # what has arrived: the deadline is checked often
                if time.monotonic() > deadline:
                    raise DownloadError(f"transfer too slow: {received} bytes in {total_seconds:g} s")
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise DownloadError("server sent more bytes than any data file has")
                dest.write(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(f"transfer cut short: {received} of {total} bytes")


def _fetch_from_mirror(url, dest, progress, timeout):
    """:func:`_fetch`, every failure of the mirror turned into :class:`_MirrorFailed` (short reason)."""
    try:
        _fetch(url, dest, progress, timeout)
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:  # urllib's redirect-loop message spans three lines
            raise _MirrorFailed(f"HTTP {e.code}: redirected in a loop, or too many times") from None
        raise _MirrorFailed(" ".join(f"HTTP {e.code} {e.reason}".split())) from None
    except TimeoutError:
        raise _MirrorFailed(f"no data for {timeout:g} s (timed out)") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        if isinstance(reason, TimeoutError):
            reason = f"no answer for {timeout:g} s (timed out)"
        reason = getattr(reason, "strerror", None) or reason
        # one line: urllib's redirect-loop message, for one, spans two
        raise _MirrorFailed(" ".join(str(reason or type(e).__name__).split())) from None
    except DownloadError as e:
        raise _MirrorFailed(str(e)) from None


class _MirrorFailed(Exception):
    """One mirror failed; the message is the short reason."""


def offline_hint(dataset):
    """How to run without a network: the options, and a package where one exists."""
    hint = ("to work offline, put the four files (.gz or not) in a folder and pass --data-dir FOLDER "
            f"or set {DATA_ENV}=FOLDER")
    if dataset == "fashion-mnist":
        hint += "; on Debian or Ubuntu, `apt install dataset-fashion-mnist` installs them in " \
                "/usr/share/datasets/fashion-mnist"
    return hint


def download_file(name, folder, dataset="mnist", mirrors=None, progress=True, timeout=None):
    """Download ``name`` (e.g. "train-images-idx3-ubyte") as ``folder/name.gz``.

    The transfer is written through :func:`digitbench.files.write_file` with the
    checksum verified before the rename: no failure, Ctrl-C or SIGTERM leaves a file.
    ``timeout`` is in seconds without data (default :data:`TIMEOUT_SECONDS`). Returns
    the final path. Raises DownloadError naming each mirror tried and why, one line
    each, then how to work offline.
    """
    folder = Path(folder)
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    checksum = CHECKSUMS[dataset][name]
    final = folder / f"{name}.gz"
    try:
        check_destination(final)
    except UsageError as e:
        raise DownloadError(str(e)) from None
    failures = []
    for base in mirrors if mirrors is not None else mirrors_for(dataset):
        url = base + f"{name}.gz"
        try:
            return write_file(final, lambda dest: _fetch_from_mirror(url, dest, progress, timeout),
                              verify=lambda tmp: read_idx(tmp, _magic_for(name), checksum=checksum, compressed=True),
                              mode=0o644)  # a data file is not secret
        except _MirrorFailed as e:
            failures.append(f"{url}: {e}")
        except DataError as e:  # from read_idx, whose message starts with the temporary file's name
            failures.append(f"{url}: {str(e).split(': ', 1)[-1]}")
    tried = "".join(f"\n  {line}" for line in failures)
    raise DownloadError(f"could not download {name}.gz for {dataset}; tried:{tried}\n{offline_hint(dataset)}")


def download_dataset(folder, dataset="mnist", progress=True, mirrors=None, timeout=None, replace_bad=False):
    """Fetch whichever of the four files are missing from ``folder``.

    A file already present is checked against its checksum. digitbench deletes a bad
    one only when ``replace_bad`` (its own per-user cache, which it wrote): a file in a
    folder the user named is never deleted or replaced; when it is the other data set's
    file, the message says so. Returns the folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{folder}: cannot create the data folder ({e.strerror or e})") from None
    sums = CHECKSUMS[dataset]
    for name in (n for pair in SPLITS.values() for n in pair):
        good = False
        for present in (p for p in (folder / name, folder / f"{name}.gz") if p.is_file()):
            try:
                read_idx(present, _magic_for(name), checksum=sums[name])
                good = True
                break
            except ForeignFileError:
                raise  # a valid file of another data set: never deleted
            except DataError:
                if not replace_bad:
                    raise
                try:
                    present.unlink()  # our own cache went bad: fetch it again
                except OSError as e:
                    raise DataError(f"{present}: fails its checksum and cannot be deleted "
                                    f"({e.strerror or e})") from None
        if not good:
            download_file(name, folder, dataset, mirrors=mirrors, progress=progress, timeout=timeout)
    return folder
