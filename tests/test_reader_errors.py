"""Every way an IDX file can be broken gives one clear DataError, never wrong data.

Each case is a small synthetic file (tests/idx_factory.py). For each, the reader
functions raise DataError naming the file and the fault, and ``digitbench train
--data-dir BADDIR`` prints exactly one line on stderr with a non-zero exit. Property
tests at the end feed thousands of random and mutated files to the reader.
"""

import gzip
import os
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import idx_factory as f
from digitbench import data as data_mod
from digitbench.cli import main
from digitbench.data import IMAGE_MAGIC, LABEL_MAGIC, read_idx, read_images, read_labels, read_split
from digitbench.datasets import load_mnist
from digitbench.errors import DataError

IMG, LBL = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def _gz_truncated():
    blob = gzip.compress(f.idx_bytes(f.images(3)), mtime=0)
    return blob[: len(blob) // 2]


def _gz_crc_error():
    blob = bytearray(gzip.compress(f.idx_bytes(f.images(3)), mtime=0))
    blob[-8] ^= 0xFF  # the CRC-32 of the trailer: data intact, checksum wrong
    return bytes(blob)


#: name -> (which file, its bytes, written gzipped?, words the message must hold)
CASES = {
    "empty file": (IMG, b"", False, "file is empty"),
    "header only": (IMG, f.idx_bytes(np.zeros((0, 28, 28)), dims=(5, 28, 28)), False, "more than the file can hold"),
    "truncated header": (IMG, f.idx_bytes(f.images(2))[:9], False, "file ends early"),
    "non-zero leading bytes": (IMG, f.idx_bytes(f.images(2), zero=0x0102), False, "not an IDX file"),
    "unknown type code": (IMG, f.idx_bytes(f.images(2), type_code=0x0D), False, "unsupported IDX type code 0x0d"),
    "wrong number of dimensions": (IMG, f.idx_bytes(f.images(2).reshape(2, 784)), False, "2 dimensions"),
    "images not 28x28": (IMG, f.idx_bytes(f.images(2, size=(32, 32))), False, "32 x 32 pixels, not 28 x 28"),
    "labels where images belong": (IMG, f.idx_bytes(f.labels(5)), False, "expected images (0x803) but the header says labels"),
    "images where labels belong": (LBL, f.idx_bytes(f.images(5)), False, "expected labels (0x801) but the header says images"),
    "payload shorter than declared": (IMG, f.idx_bytes(f.images(3))[:-100], False, "more than the file can hold"),
    "payload longer than declared": (IMG, f.idx_bytes(f.images(3)) + b"\0", False, "longer than its header declares"),
    "billions of items": (IMG, f.idx_bytes(f.images(1), dims=(4_000_000_000, 28, 28)), False, "more than the file can hold"),
    "billions of items, gzipped": (IMG, f.idx_bytes(f.images(1), dims=(4_000_000_000, 28, 28)), True, "more than the file can hold"),
    "no images": (IMG, f.idx_bytes(np.zeros((0, 28, 28))), False, "a dimension of size 0"),
    "label above 9": (LBL, f.idx_bytes(np.array([1, 2, 10, 3])), False, "label 10 at index 2 is not a digit"),
    "gzip with bad magic": (IMG + ".gz", f.idx_bytes(f.images(2)), False, "not a gzip file"),
    "gzip truncated": (IMG + ".gz", _gz_truncated(), False, "corrupt gzip stream"),
    "gzip CRC error": (IMG + ".gz", _gz_crc_error(), False, "corrupt gzip stream"),
    "gzip payload shorter than declared": (IMG, f.idx_bytes(f.images(3))[:-100], True, "file ends early"),
}


def _write_case(folder, case):
    name, raw, gz, _ = CASES[case]
    if gz:
        name += ".gz"
    return f.write(Path(folder) / name, raw, gz=gz)


@pytest.mark.parametrize("case", CASES)
def test_reader_raises_dataerror(tmp_path, case):
    path = _write_case(tmp_path, case)
    reader = read_labels if "labels" in path.name else read_images
    with pytest.raises(DataError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message, message
    assert CASES[case][3] in message, message
    assert "\n" not in message


def _bad_dataset(folder, case, monkeypatch):
    """Four valid synthetic files (checksums patched in), then one replaced by ``case``."""
    sums, _ = f.write_dataset(folder)
    name = CASES[case][0].removesuffix(".gz")
    sums[name] = f.sha256(CASES[case][1])  # so that the structural fault, not the sum, is found
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    for stale in Path(folder).glob(name + "*"):
        stale.unlink()
    _write_case(folder, case)


@pytest.mark.parametrize("case", CASES)
def test_cli_train_bad_data_one_line(tmp_path, case, monkeypatch, capsys):
    _bad_dataset(tmp_path, case, monkeypatch)
    code = main(["train", "--data-dir", str(tmp_path), "--epochs", "1", "--out", "", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("digitbench train: error: "), err
    assert CASES[case][3] in err and "Traceback" not in err


def test_cli_bad_data_in_a_real_process(tmp_path):
    """The real console entry point: exit status 1, one line, no traceback."""
    f.write_dataset(tmp_path)  # structurally valid, but the empty file below is read first
    (tmp_path / f"{IMG}.gz").unlink()
    (tmp_path / IMG).write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "digitbench.cli", "train", "--data-dir", str(tmp_path),
                           "--epochs", "1", "--out", ""], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == f"digitbench train: error: {tmp_path / IMG}: file is empty (it ends early, before the IDX header)\n"


def test_missing_files_named(tmp_path, capsys):
    code = main(["train", "--data-dir", str(tmp_path), "--epochs", "1", "--out", ""])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "missing train-images-idx3-ubyte" in err and "digitbench download" in err


def test_missing_folder_named(tmp_path, capsys):
    code = main(["train", "--data-dir", str(tmp_path / "nope"), "--epochs", "1", "--out", ""])
    err = capsys.readouterr().err
    assert code == 1 and "no such data folder" in err and err.count("\n") == 1


def test_different_image_and_label_counts(tmp_path):
    images = f.write(tmp_path / "i", f.idx_bytes(f.images(5)))
    labels = f.write(tmp_path / "l", f.idx_bytes(f.labels(4)))
    with pytest.raises(DataError, match="5 images but .* has 4 labels"):
        read_split(images, labels)


def test_different_counts_via_cli(tmp_path, monkeypatch, capsys):
    sums, _ = f.write_dataset(tmp_path)
    raw = f.idx_bytes(f.labels(59))  # 60 train images
    f.write(tmp_path / f"{LBL}.gz", raw)
    sums[LBL] = f.sha256(raw)
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    assert main(["train", "--data-dir", str(tmp_path), "--epochs", "1", "--out", ""]) == 1
    assert "60 images but" in capsys.readouterr().err


def test_checksum_mismatch_with_real_names(tmp_path, capsys):
    """A well-formed file under a real name that is not the published file."""
    f.write_dataset(tmp_path)  # real CHECKSUMS left in place: the first file fails
    with pytest.raises(DataError, match="checksum mismatch") as info:
        load_mnist(tmp_path)
    assert f"{IMG}.gz" in str(info.value)
    assert main(["train", "--data-dir", str(tmp_path), "--epochs", "1", "--out", ""]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and err.count("\n") == 1


def test_valid_files_round_trip(tmp_path, monkeypatch):
    """The control: the same factory's good files load exactly (raw and gzipped)."""
    for gz in (True, False):
        folder = tmp_path / str(gz)
        sums, payloads = f.write_dataset(folder, gz=gz)
        monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
        train_x, train_y, test_x, test_y = load_mnist(folder)
        assert train_x.shape == (60, 784) and test_y.shape == (20,)
        assert train_x.tobytes() == payloads["train-images-idx3-ubyte"][16:]
        assert test_y.tobytes() == payloads["t10k-labels-idx1-ubyte"][8:]


def test_gzip_content_detected_without_gz_name(tmp_path):
    raw = f.idx_bytes(f.labels(7))
    path = f.write(tmp_path / "labels-without-suffix", raw, gz=True)
    assert read_labels(path).tobytes() == raw[8:]


@pytest.mark.parametrize("gz", [False, True])
def test_huge_header_rejected_before_allocating(tmp_path, gz):
    """A 16-byte header claiming 4e9 x 28 x 28 items, or a short gzip claiming 200 MB."""
    dims = (4_000_000_000, 28, 28) if not gz else (255_000, 28, 28)  # 200 MB: under the cap
    path = f.write(tmp_path / "huge", f.idx_bytes(f.images(1), dims=dims), gz=gz)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError):
            read_images(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"  # reads go in 1 MiB chunks
    assert time.perf_counter() - start < 2


def test_validation_holds_under_python_O(tmp_path):
    """No check relies on ``assert``: under -O the bad files are still refused."""
    bad = []
    for case in ("label above 9", "images not 28x28", "payload longer than declared"):
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        bad.append(_write_case(folder, case))
    script = (
        "import sys\n"
        "from digitbench.data import read_images, read_labels\n"
        "from digitbench.errors import DataError\n"
        "if sys.flags.optimize != 1: sys.exit('not running under -O')\n"
        "for p in sys.argv[1:]:\n"
        "    reader = read_labels if 'labels' in p else read_images\n"
        "    try:\n"
        "        reader(p)\n"
        "        print('LOADED', p)\n"
        "    except DataError as e:\n"
        "        print('REJECTED', e)\n"
    )
    proc = subprocess.run([sys.executable, "-O", "-c", script, *map(str, bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("REJECTED") == 3 and "LOADED" not in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- properties


def reference_parse(raw, expected_magic=None):
    """An independent, deliberately plain reading of IDX bytes: an array or None."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        return None
    ndim = raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if (expected_magic is not None and magic != expected_magic) or ndim == 0 or len(raw) < 4 + 4 * ndim:
        return None
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    count = int(np.prod(dims, dtype=object))
    if count == 0 or len(raw) != 4 + 4 * ndim + count:  # an empty array is refused
        return None
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def reference_gunzip(blob):
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error):  # BadGzipFile is an OSError
        return None


def _check_reader(path, blob, gz, expected_magic, checksum=None, original=None):
    raw = reference_gunzip(blob) if gz else blob
    expected = None if raw is None else reference_parse(raw, expected_magic)
    if checksum is not None and raw is not None and f.sha256(raw) != checksum:
        expected = None
    path.write_bytes(blob)
    try:
        got = read_idx(path, expected_magic, checksum=checksum)
    except DataError as e:
        assert "\n" not in str(e)
        assert expected is None, f"refused a valid file: {e}"
        event("rejected with DataError")
        return
    event("accepted")
    assert expected is not None, f"accepted an invalid file as shape {got.shape}"
    assert got.shape == expected.shape and got.tobytes() == expected.tobytes()
    if original is not None:
        assert got.tobytes() == original


#: The example count comes from the profile (tests/conftest.py: few locally, thousands in CI).
PROPERTY_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

small_dim = st.integers(0, 6)
any_dim = st.one_of(small_dim, small_dim, small_dim, small_dim, st.integers(0, 2**32 - 1), st.sampled_from([28, 2**31, 2**32 - 1]))


@st.composite
def idx_files(draw):
    """A header that is usually almost right, and a body of about the declared size."""
    zero = draw(st.sampled_from([0] * 12 + [1, 0x1F8B, 0xFFFF]))
    type_code = draw(st.sampled_from([0x08] * 12 + [0x09, 0x0D, 0x00]))
    ndim = draw(st.integers(0, 4))
    dims = draw(st.lists(any_dim, min_size=ndim, max_size=ndim))
    declared = int(np.prod(dims, dtype=object)) if dims else 0
    size = declared if declared < 300 else draw(st.integers(0, 300))
    size = max(0, size + draw(st.sampled_from([0] * 8 + [-1, 1, -5, 7])))
    body = draw(st.binary(min_size=size, max_size=size))
    header = zero.to_bytes(2, "big") + bytes([type_code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    cut = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(header))))
    raw = header[:cut] + (body if cut is None else b"")
    return raw, draw(st.booleans()), draw(st.sampled_from([None, None, None, IMAGE_MAGIC, LABEL_MAGIC]))


@settings(**PROPERTY_SETTINGS)
@given(idx_files())
def test_property_random_headers(tmp_path, case):
    raw, gz, magic = case
    blob = gzip.compress(raw, mtime=0) if gz else raw
    _check_reader(tmp_path / ("f.gz" if gz else "f"), blob, gz, magic)


@st.composite
def mutated_files(draw):
    """A valid images or labels file, raw or gzipped, then a few byte-level edits."""
    kind = draw(st.sampled_from(["images", "labels"]))
    n = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 1000))
    array = f.images(n, seed) if kind == "images" else f.labels(n, seed)
    raw = f.idx_bytes(array)
    gz = draw(st.booleans())
    blob = bytearray(gzip.compress(raw, mtime=0) if gz else raw)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "append", "insert", "delete"]))
        at = draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip" and blob:
            blob[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and blob:
            blob[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del blob[at:]
        elif op == "append":
            blob += draw(st.binary(min_size=1, max_size=8))
        elif op == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del blob[at:at + draw(st.integers(1, 4))]
    magic = IMAGE_MAGIC if kind == "images" else LABEL_MAGIC
    return bytes(blob), gz, magic, raw


@settings(**PROPERTY_SETTINGS)
@given(mutated_files())
def test_property_mutations_with_checksum(tmp_path, case):
    """With the original's checksum, the only acceptable success is the original itself."""
    blob, gz, magic, raw = case
    _check_reader(tmp_path / ("f.gz" if gz else "f"), blob, gz, magic, checksum=f.sha256(raw),
                  original=raw[4 + 4 * raw[3]:])


@settings(**PROPERTY_SETTINGS)
@given(mutated_files())
def test_property_mutations_without_checksum(tmp_path, case):
    """Without a checksum, whatever loads is exactly what the bytes say."""
    blob, gz, magic, _ = case
    _check_reader(tmp_path / ("f.gz" if gz else "f"), blob, gz, magic)
