"""Reading MNIST's IDX files, safely: the files' names, checksums and where the cache is.

This module knows single files; :mod:`digitbench.datasets` (above it and above
:mod:`digitbench.download`) finds a data set's folder and loads its four arrays.

The IDX format (LeCun et al.) is a big-endian header followed by a raw payload::

    bytes 0-1   zero
    byte  2     type code: 0x08 = unsigned byte (the only one MNIST uses)
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension, big-endian uint32
    payload     prod(sizes) items, row-major

Images are magic 0x00000803 (d = 3: n x 28 x 28), labels 0x00000801 (d = 1: n).
Every check below raises :class:`~digitbench.errors.DataError` naming the file and
what is wrong; none relies on ``assert``, so they hold under ``python -O``. Sizes are
checked against the file (or a hard cap for gzip streams) *before* anything large is
allocated, and payloads are read in 1 MiB chunks, so a header that declares billions of
items, or a short gzip stream that declares 200 MB, costs nothing.
"""

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import platformdirs

from .errors import DataError, ForeignFileError

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
TYPE_UBYTE = 0x08
#: No real IDX file of this project is larger; a bigger declared payload is refused.
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
READ_CHUNK = 1 << 20

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: SHA-256 of each file's *decompressed* payload: it holds for the published .gz files,
#: for recompressed copies and for already-decompressed files alike.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
DATASETS = tuple(CHECKSUMS)
#: How the messages name the data sets.
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
#: Size in bytes of each uncompressed file (the same for both data sets): header + payload.
RAW_SIZES = {
    "train-images-idx3-ubyte": 16 + 60_000 * 784,  # 47,040,016
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 784,  # 7,840,016
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}
#: The published files by their payload's SHA-256: (data set, file name). Frozen at
#: import, so it names the real files even when tests patch CHECKSUMS.
KNOWN_FILES = {digest: (dataset, name) for dataset, sums in CHECKSUMS.items() for name, digest in sums.items()}


def describe_file(dataset, name):
    """"MNIST's train-images file", for the messages."""
    return f"{TITLES[dataset]}'s {name.split('-idx')[0]} file"


def mismatch_message(path, digest, expected):
    """Why a file fails its checksum, in words: another known file, or not an original.

    The known checksums say when a valid file of the other data set (or another split)
    sits under this name: then the message says which file it is, and nothing
    suggests deleting it.
    """
    found, wanted = KNOWN_FILES.get(digest), KNOWN_FILES.get(expected)
    if found and wanted:
        hint = (f"; choose --dataset {found[0]}, or point --data-dir (or DIGITBENCH_DATA) at a folder with "
                f"{TITLES[wanted[0]]}'s files" if found[0] != wanted[0] else "; the files' names are mixed up")
        wanted_words = f"{TITLES[wanted[0]]}'s" if found[1] == wanted[1] else describe_file(*wanted)
        return f"{path}: this is {describe_file(*found)}, not {wanted_words}{hint}"
    return (f"{path}: checksum mismatch (SHA-256 {digest[:16]}..., expected {expected[:16]}...): "
            "the file is corrupt or not the original; move it away, then `digitbench download` fetches a fresh copy")


# --------------------------------------------------------------------------- reading


def _open_payload(path, compressed=None):
    """Open ``path`` for reading raw IDX bytes, through gzip when it is compressed.

    ``compressed=None`` decides by the content: a file starting with the gzip magic
    is gunzipped (an IDX file starts with two zero bytes, so the two cannot be
    confused); a name ending in ``.gz`` must start with the gzip magic. Returns
    (stream, size limit of header plus payload in bytes, underlying file).
    """
    path = Path(path)
    try:
        f = open(path, "rb")
        head = f.read(2)
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror or e})") from None
    if size == 0:
        f.close()
        raise DataError(f"{path}: file is empty (it ends early, before the IDX header)")
    if compressed is None:
        compressed = path.suffix == ".gz" or head == GZIP_MAGIC
    if compressed:
        if head != GZIP_MAGIC:
            f.close()
            raise DataError(f"{path}: not a gzip file (bad magic bytes {head.hex() or 'none'})")
        return gzip.GzipFile(fileobj=f, mode="rb"), MAX_PAYLOAD_BYTES, f
    if size > MAX_PAYLOAD_BYTES + 1024:  # header room; the cap for files of unknown content
        f.close()
        raise DataError(f"{path}: {size:,} bytes, larger than any data file read here "
                        f"({MAX_PAYLOAD_BYTES // 2**20} MiB); not an MNIST file")
    return f, size, f


def _read_exact(stream, n, path, what):
    """Read exactly ``n`` bytes, in chunks, so memory grows only with what arrives.

    (``GzipFile.read(n)`` would allocate all ``n`` bytes up front, however short the
    stream: a 40-byte file declaring 200 MB must not cost 200 MB.)
    """
    parts, got = [], 0
    try:
        while got < n:
            part = stream.read(min(READ_CHUNK, n - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
    except (OSError, EOFError, zlib.error) as e:
        # gzip raises BadGzipFile (an OSError) for a CRC error, EOFError when truncated.
        raise DataError(f"{path}: corrupt gzip stream ({e})") from None
    if got != n:
        raise DataError(f"{path}: file ends early: expected {n} bytes of {what}, got {got}")
    return b"".join(parts)


def read_idx(path, expected_magic=None, *, checksum=None, compressed=None):
    """Read one IDX file (gzip-compressed or not) into a uint8 array.

    Parameters
    ----------
    path : str or Path
    expected_magic : int, optional
        IMAGE_MAGIC or LABEL_MAGIC; a file with the other one is refused.
    checksum : str, optional
        Hex SHA-256 that the decompressed bytes (header and payload) must have.
    compressed : bool, optional
        Whether the file is gzip; by default, whether its name ends in ``.gz``.

    Returns
    -------
    ndarray of uint8 with the shape the header declares.
    """
    stream, limit, raw = _open_payload(path, compressed)
    try:
        _check_raw_size(path, raw, stream, checksum)
        header = _read_exact(stream, 4, path, "header")
        zero, type_code, ndim = struct.unpack(">HBB", header)
        if zero != 0:
            raise DataError(f"{path}: not an IDX file (first two bytes are {header[:2].hex()}, not 0000)")
        if type_code != TYPE_UBYTE:
            raise DataError(f"{path}: unsupported IDX type code 0x{type_code:02x} (only 0x08, unsigned byte)")
        magic = struct.unpack(">I", header)[0]
        if expected_magic is not None and magic != expected_magic:
            kinds = {IMAGE_MAGIC: "images (0x803)", LABEL_MAGIC: "labels (0x801)"}
            found = kinds.get(magic, f"{ndim} dimensions (0x{magic:x})")
            raise DataError(f"{path}: expected {kinds[expected_magic]} but the header says {found}")
        if ndim == 0:
            raise DataError(f"{path}: IDX header declares zero dimensions")
        dims_raw = _read_exact(stream, 4 * ndim, path, "dimension sizes")
        dims = struct.unpack(f">{ndim}I", dims_raw)
        if 0 in dims:  # also keeps 0 x 2**31 x 2**31 from reaching reshape
            raise DataError(f"{path}: header declares {' x '.join(map(str, dims))} items: "
                            "a dimension of size 0, so no data")
        n_items = 1
        for d in dims:
            n_items *= d  # Python ints: no overflow, however large the header claims
        header_len = 4 + 4 * ndim
        room = limit - header_len  # bytes the file (or the gzip cap) leaves for data
        if n_items > room:
            raise DataError(
                f"{path}: header declares {' x '.join(map(str, dims))} = {n_items} bytes of data, "
                f"more than the file can hold ({room} bytes)"
            )
        payload = _read_exact(stream, n_items, path, "data")
        extra = stream.read(1)
        if extra:
            raise DataError(f"{path}: file is longer than its header declares ({n_items} bytes of data)")
        if checksum is not None:
            digest = hashlib.sha256(header + dims_raw + payload).hexdigest()
            if digest != checksum:
                error = ForeignFileError if KNOWN_FILES.get(digest) else DataError
                raise error(mismatch_message(path, digest, checksum))
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip stream ({e})") from None
    finally:
        stream.close()
        raw.close()
    # A copy in memory NumPy allocates: for large arrays NumPy asks Linux for huge pages
    # (madvise), so that the rows an SGD batch picks at random from 47 MB of images miss
    # the TLB far less than in the bytes object read. Measured here on the numba backend
    # (batch 64, the same process, alternating): epochs 15-25% faster, at 1 and 2
    # threads. The copy costs ~10 ms once.
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims).copy()


def _check_raw_size(path, raw, stream, checksum):
    """An uncompressed file whose checksum names a published file must have its size.

    Checked before a byte of payload is read: a sparse file declaring gigabytes, or a
    truncated copy, is refused at once.
    """
    known = KNOWN_FILES.get(checksum)
    if known is None or stream is not raw:
        return
    size, expected = os.fstat(raw.fileno()).st_size, RAW_SIZES[known[1]]
    if size != expected:
        raise DataError(f"{path}: {size:,} bytes, but {describe_file(*known)} has {expected:,} uncompressed; "
                        "it is not the original (move it away, then `digitbench download` fetches a fresh copy)")


def read_images(path, checksum=None):
    """Images as uint8 of shape (n, 784); the file must hold n x 28 x 28."""
    images = read_idx(path, IMAGE_MAGIC, checksum=checksum)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{path}: images are {' x '.join(map(str, images.shape[1:]))} pixels, not 28 x 28")
    return images.reshape(len(images), 784)


def read_labels(path, checksum=None):
    """Labels as uint8 of shape (n,); every label must be a digit 0..9."""
    labels = read_idx(path, LABEL_MAGIC, checksum=checksum)
    if labels.ndim != 1:
        raise DataError(f"{path}: labels have {labels.ndim} dimensions, not 1")
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{path}: label {int(labels[bad])} at index {bad} is not a digit 0..9")
    return labels


def read_split(images_path, labels_path, image_checksum=None, label_checksum=None):
    """One split's images (n, 784) and labels (n,), with matching counts."""
    images = read_images(images_path, image_checksum)
    labels = read_labels(labels_path, label_checksum)
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels")
    return images, labels


# --------------------------------------------------------------------------- files in a folder


def default_cache_dir():
    """The per-user cache folder (platformdirs), e.g. ~/.cache/digitbench on Linux."""
    return Path(platformdirs.user_cache_dir("digitbench"))


def find_file(folder, name):
    """The path of ``name`` or ``name.gz`` in ``folder`` (raw preferred), or None."""
    for candidate in (Path(folder) / name, Path(folder) / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder):
    """Names of the four files that are absent from ``folder``."""
    return [n for pair in SPLITS.values() for n in pair if find_file(folder, n) is None]
