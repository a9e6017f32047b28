"""Turning a photo or drawing of a digit into an MNIST-like 28 x 28 input.

MNIST's own preprocessing (LeCun et al.): white digit on black, the digit's bounding
box scaled to fit 20 x 20 keeping its aspect ratio, then placed in a 28 x 28 field so
that its centre of mass is at the centre. :func:`preprocess_image` does the same:

1. read with Pillow and turned upright as its EXIF Orientation says; transparent parts
   become a backdrop that contrasts with the opaque parts (white behind dark strokes,
   black behind light ones); 16-bit images are scaled to 8 bits;
2. grayscale; inverted when the background (the border pixels) is light;
3. cropped to the pixels brighter than 20% of the maximum;
4. resized (Lanczos) so that the longer side is 20 pixels;
5. pasted into 28 x 28 with its centre of mass at (14, 14).
"""

import os
import warnings

import numpy as np

from .errors import ImageError
from .pixels import scale_pixels

#: Images with more pixels than this are refused before decoding (decompression bombs).
MAX_PIXELS = 40_000_000


def _decode_errors():
    """What Pillow raises on a corrupt file, besides its own OSError subclasses.

    Its format plugins parse headers with ``struct``, ``int()``, slicing and lookups,
    so a mutated file of one format or another raises each of these (found by
    tests/test_images.py's fuzzing: a truncated IHDR gives ``SyntaxError``, a PGM with a
    malformed header ``ValueError``, mutated IM, SGI, DDS, SPIDER or JPEG 2000 files
    ``NotImplementedError``, ``AttributeError``, ``struct.error``, ``EOFError``; libavif's decoder
    ``RuntimeError``, ...).
    Every one becomes an :class:`ImageError` naming the file.
    """
    import struct

    return (OSError, ValueError, SyntaxError, struct.error, EOFError, IndexError, KeyError, TypeError,
            NotImplementedError, AttributeError, ZeroDivisionError, OverflowError, MemoryError, RuntimeError)


def _open(path):
    from PIL import Image, UnidentifiedImageError

    try:
        if os.stat(path).st_size == 0:
            raise ImageError(f"{path}: file is empty (0 bytes), not an image")
        if os.path.isdir(path):
            raise ImageError(f"{path}: is a folder, not an image file")
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; MAX_PIXELS below decides.
            # Its other warnings (a malformed chunk, ...) are about files refused below anyway.
            warnings.simplefilter("ignore")
            image = Image.open(path)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (PNG, JPEG, ...)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: image is too large (more than the limit of {MAX_PIXELS} pixels)") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    except _decode_errors() as e:
        raise ImageError(f"{path}: cannot decode ({type(e).__name__}: {_short(e)})") from None
    return _check_size(image, path)


def _check_size(image, path):
    try:
        width, height = image.size
    except _decode_errors() as e:
        raise ImageError(f"{path}: cannot decode ({type(e).__name__}: {_short(e)})") from None
    if not (isinstance(width, int) and isinstance(height, int)):
        raise ImageError(f"{path}: cannot decode (size {image.size!r})")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{path}: image is {width} x {height} pixels, more than the limit of {MAX_PIXELS}")
    if width <= 0 or height <= 0:
        raise ImageError(f"{path}: image is empty ({width} x {height} pixels)")
    return image


def _short(error, limit=120):
    """An exception's message on one line, at most ``limit`` characters."""
    text = " ".join(str(error).split()) or "no detail"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _to_gray(image, path):
    """The image as float64 grayscale in [0, 255], shape (height, width), upright: turned
    as its EXIF Orientation tag says (a phone stores a portrait shot sideways, tag 6)."""
    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _gray_pixels(ImageOps.exif_transpose(image), path)
    except ImageError:
        raise
    except _decode_errors() as e:
        raise ImageError(f"{path}: cannot decode ({type(e).__name__}: {_short(e)})") from None


def _gray_pixels(image, path):
    """:func:`_to_gray` without the error handling."""
    image.load()
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(gray.max()), 1.0)
        return gray * (255.0 / top)
    if image.mode == "F":
        gray = np.asarray(image, dtype=np.float64)
        if not np.isfinite(gray).all():
            raise ImageError(f"{path}: image holds NaN or infinite values")
        return 255.0 * (gray - gray.min()) / max(float(np.ptp(gray)), 1e-12)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        return _flatten_alpha(image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float64)


def _flatten_alpha(rgba):
    """Gray (height, width) of an RGBA image laid over a backdrop that contrasts with it.

    gray = alpha * luminance + (1 - alpha) * backdrop, where the backdrop is white when
    the opaque pixels are dark on average (black ink on a transparent sheet) and black
    when they are light (a white stroke on a transparent sheet): over white, a white
    digit would vanish.
    """
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255
    luminance = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float64)
    weight = alpha.sum()
    opaque_mean = (luminance * alpha).sum() / weight if weight > 0 else 0.0
    backdrop = 0.0 if opaque_mean > 127 else 255.0
    return alpha * luminance + (1 - alpha) * backdrop


def _border(gray):
    """The pixels on the four edges of ``gray``, which are taken to be background."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def preprocess_image(source, name=None):
    """Read an image of one digit as MNIST would have it.

    Parameters
    ----------
    source : path (str or os.PathLike) of an image file, or a PIL image
    name : str, how errors name the image (default: the path, or "PIL image")

    Returns
    -------
    ndarray of shape (784,), uint8, white digit on black.

    Raises
    ------
    ImageError, one line naming the image, for anything that is not a readable digit.
    """
    if isinstance(source, (str, os.PathLike)):
        name = source if name is None else name
        image = _open(source)
    else:
        name = name or "PIL image"
        image = _check_size(source, name)
    return frame_digit(_to_gray(image, name), name)


def frame_digit(gray, name):
    """Steps 2 to 5 of the module docstring: gray pixels to an MNIST-framed digit.

    Parameters
    ----------
    gray : ndarray of shape (height, width), float64 in [0, 255]
    name : str, how errors name the image

    Returns
    -------
    ndarray of shape (784,), uint8, white digit on black.
    """
    from PIL import Image

    if np.median(_border(gray)) > 127:  # light background: make the digit the bright part
        gray = 255.0 - gray
    gray = np.clip(gray - np.median(_border(gray)), 0, 255)  # background to 0
    if gray.max() < 16:
        raise ImageError(f"{name}: no digit found (the image is blank or has no contrast)")
    rows = np.flatnonzero((gray > 0.2 * gray.max()).any(axis=1))
    cols = np.flatnonzero((gray > 0.2 * gray.max()).any(axis=0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = crop * (255.0 / crop.max())
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray(crop.astype(np.float32), mode="F").resize((new_w, new_h), Image.LANCZOS)
    small = np.clip(np.asarray(small, dtype=np.float64), 0, 255)
    mass = small.sum()
    cy = (small.sum(axis=1) @ np.arange(new_h)) / mass
    cx = (small.sum(axis=0) @ np.arange(new_w)) / mass
    # MNIST's digits have their centre of mass at (14.0, 14.0) in 0-based pixel indices
    # (mean over 20,000 training digits: 13.997, 14.006; sd 0.29), not at 13.5.
    top = int(np.clip(round(14.0 - cy), 0, 28 - new_h))
    left = int(np.clip(round(14.0 - cx), 0, 28 - new_w))
    field = np.zeros((28, 28))
    field[top:top + new_h, left:left + new_w] = small
    return np.round(field).astype(np.uint8).reshape(784)


def predict_pixels(backend, params, pixels):
    """Probabilities of shape (n, 10) for uint8 ``pixels`` of shape (n, 784)."""
    return backend.forward(params, scale_pixels(pixels, params.W1.dtype))


def predict_images(backend, params, paths):
    """Probabilities (len(paths), 10) for the images at ``paths``."""
    return predict_pixels(backend, params, np.stack([preprocess_image(p) for p in paths]))
