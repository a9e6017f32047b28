"""Fuzzing predict's image loader: mutated files of every format Pillow can write.

For each format that Pillow can both write and open here (PNG, JPEG, BMP, GIF, TIFF,
PPM/PGM, WebP and JPEG 2000 when their libraries are present, ICO, TGA, SGI, IM, PCX,
DDS, SPIDER, XBM, ...), a small digit is saved and hypothesis mutates the bytes
(overwrites, truncation, insertions, deletions). :func:`preprocess_image` must give a
28 x 28 uint8 digit or raise the project's own :class:`ImageError`: never Pillow's
``ValueError``, ``SyntaxError``, ``struct.error`` and the like, which would reach the
user as a traceback.

Examples per format: ``DIGITBENCH_FUZZ_EXAMPLES``, else 300 under ``CI=true`` (about
6,000 cases over the formats) and 25 locally.
"""

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitbench.errors import ImageError
from digitbench.predict import preprocess_image

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = int(os.environ.get("DIGITBENCH_FUZZ_EXAMPLES", 300 if CI else 25))

#: The mode each format is saved in, when RGB is not what it takes (None: skip it).
MODES = {"XBM": "1", "MSP": "1", "SPIDER": "F", "IM": "L", "PCX": "L", "SGI": "L", "PPM": "L", "GIF": "P",
         "DDS": "RGBA", "ICO": "RGBA", "EPS": None, "PDF": None, "PALM": None, "MPO": None}


def _digit(mode):
    x = np.zeros((24, 20), np.uint8)
    x[4:20, 8:12] = 255
    x[4:8, 5:12] = 200  # a "1" with its flag
    image = Image.fromarray(x)
    return image.convert(mode) if mode != "L" else image


def _seeds():
    """{format: bytes of a saved digit} for every format Pillow can write and read back."""
    Image.init()  # registers every plugin, so that SAVE and OPEN list them all
    seeds = {}
    for fmt in sorted(set(Image.SAVE) & set(Image.OPEN)):
        mode = MODES.get(fmt, "RGB")
        if mode is None:
            continue
        buf = io.BytesIO()
        try:
            _digit(mode).save(buf, format=fmt)
            Image.open(io.BytesIO(buf.getvalue())).load()
        except Exception:  # this build of Pillow cannot write or read it back: not a seed
            continue
        seeds[fmt] = buf.getvalue()
    return seeds


SEEDS = _seeds()


def test_the_usual_formats_are_fuzzed():
    assert {"PNG", "JPEG", "BMP", "GIF", "TIFF", "PPM", "ICO", "TGA", "SGI", "IM", "PCX", "DDS", "SPIDER",
            "XBM"} <= set(SEEDS)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_unmutated_seed_reads(fmt, tmp_path):
    path = tmp_path / f"digit.{fmt.lower()}"
    path.write_bytes(SEEDS[fmt])
    assert preprocess_image(path).shape == (784,)


def mutate(data, edits):
    """Apply ``edits`` (kind, position as a fraction, value) to ``data``."""
    out = bytearray(data)
    for kind, where, value in edits:
        i = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "set" and out:
            out[i] = value
        elif kind == "insert":
            out[i:i] = bytes([value]) * (1 + value % 8)
        elif kind == "delete":
            del out[i:i + 1 + value % 16]
        elif kind == "truncate":
            del out[i:]
    return bytes(out)


EDITS = st.lists(st.tuples(st.sampled_from(["set", "set", "set", "insert", "delete", "truncate"]),
                           st.floats(0, 1, allow_nan=False), st.integers(0, 255)), min_size=1, max_size=6)
# Headers are where parsers break: half the edits land in the first 64 bytes.
HEADER_EDITS = st.lists(st.tuples(st.sampled_from(["set", "insert", "delete"]), st.floats(0, 1, allow_nan=False),
                                  st.integers(0, 255)), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_images_give_a_digit_or_one_line(fmt, scratch):
    seed = SEEDS[fmt]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not CI,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(edits=EDITS, header=HEADER_EDITS, in_header=st.booleans())
    def check(edits, header, in_header):
        data = mutate(seed[:64], header) + seed[64:] if in_header else mutate(seed, edits)
        path = scratch / f"mutated.{fmt.lower()}"
        path.write_bytes(data)
        try:
            pixels = preprocess_image(path)
        except ImageError as e:
            message = str(e)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
        else:
            assert pixels.shape == (784,) and pixels.dtype == np.uint8

    check()


@pytest.mark.parametrize("data, words", [
    (b"P5\n28 x\n255\n" + bytes(784), "cannot decode"),        # PGM whose height is not a number
    (b"P5\n28 28\n-1\n" + bytes(784), "cannot decode"),        # PGM with a negative maximum
])
def test_known_crashers_are_one_line(tmp_path, data, words):
    path = tmp_path / "bad.pgm"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="cannot") as info:
        preprocess_image(path)
    assert str(info.value).startswith(f"{path}: ")


def test_truncated_ihdr_png_is_one_line(tmp_path):
    path = tmp_path / "ihdr.png"
    buf = io.BytesIO()
    _digit("L").save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[:8 + 8 + 6])  # signature, chunk header, 6 of IHDR's 13 bytes
    with pytest.raises(ImageError) as info:
        preprocess_image(path)
    assert str(info.value).startswith(f"{path}: ")
