"""How an image of any kind (file, PIL image, array) becomes a 2-D grayscale float array.

Every mode PIL opens is read without loss of range: 16-bit and 32-bit images keep their
precision, palettes are expanded, and transparency is composited onto a paper colour chosen so
that ink held in the alpha channel (a drawing on a transparent canvas) stays ink. Files cost
bounded time and memory: PIL's decompression-bomb guard is an error, JPEGs are decoded at a
reduced scale and other large images are reduced before any float array is made.
"""

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Pages are reduced to at most this many pixels a side before they are processed: a digit
# needs far fewer, and a 12-megapixel photo would otherwise cost 100 MB of floats.
MAX_SIDE = 1024
# Above this share of (nearly) opaque pixels, transparency marks the margins of a page
# rather than the strokes of a drawing on a transparent canvas.
OPAQUE_PAGE_SHARE = 0.5
# ITU-R 601 luma, the weights PIL's convert("L") uses.
LUMA = np.array([0.299, 0.587, 0.114])


def read_gray(source):
    """Return ``source`` as a 2-D float64 array of gray levels from 0 (black) to 1 (white).

    Parameters
    ----------
    source : str, path-like, PIL.Image.Image or array-like
        An image file, a PIL image, or pixels: ``(h, w)`` gray, ``(h, w, 1)``, ``(h, w, 3)``
        RGB or ``(h, w, 4)`` RGBA. Integer arrays are read on their dtype's full scale
        (uint8 0..255, uint16 0..65535); float arrays keep their values, whatever the scale.

    Returns
    -------
    gray : ndarray of shape (height, width), dtype float64
    """
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), _from_pil)
    if isinstance(source, Image.Image):
        return _from_pil(source)
    return _from_array(np.asarray(source))


def read_colour(source):
    """Return ``source`` as an ``(h, w, 3)`` float64 array of RGB levels from 0 to 1.

    As :func:`read_gray`, keeping the colour: grey images give three equal channels, and
    each channel of a transparent image is laid on paper as the gray levels are.
    """
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), _colour_from_pil)
    if isinstance(source, Image.Image):
        return _colour_from_pil(source)
    return _colour_from_array(np.asarray(source))


def _read_file(path, convert):
    """Return the image file ``path`` read by ``convert``, bounded in time and memory."""
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            # PIL only warns between its limit and twice it; both are decompression bombs here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                # JPEGs decode straight to a smaller scale; a no-op for other formats.
                image.draft(None, (MAX_SIDE, MAX_SIDE))
                return convert(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(
            f"cannot read the image file {path}: it is too large to be a digit image, and "
            f"may be a decompression bomb ({exc})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # PIL signals undecodable, truncated and empty files with OSError (and a few broken
        # headers with SyntaxError, ValueError or EOFError).
        raise ValueError(f"cannot read the image file {path}: {exc}") from None


def _from_pil(image):
    """Return a PIL image's gray levels, upright, composited, reduced to ``MAX_SIDE``."""
    return _from_array(_pil_pixels(image))


def _colour_from_pil(image):
    """Return a PIL image's RGB levels, upright, composited, reduced to ``MAX_SIDE``."""
    return _colour_from_array(_pil_pixels(image))


def _pil_pixels(image):
    """Return a PIL image's pixels upright and reduced to ``MAX_SIDE``: gray, RGB or RGBA."""
    # Phone cameras store the rotation in EXIF instead of rotating the pixels.
    image = ImageOps.exif_transpose(image)
    factor = -(-max(image.size) // MAX_SIDE)
    if image.mode not in ("L", "RGB", "RGBA") and not image.mode.startswith(("I", "F")):
        # Palettes (with their transparency), bilevel, gray with alpha and other colour
        # spaces as RGB or RGBA.
        transparent = image.mode in ("PA", "LA", "La", "RGBa") or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
    if factor > 1:
        if image.mode.startswith("I;16"):
            image = image.convert("I")
        image = image.reduce(factor)
    return np.asarray(image)


def _from_array(pixels):
    """Return an ``(h, w)``, ``(h, w, 1|3|4)`` pixel array as gray levels, alpha composited."""
    if pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4):
        channels = _scaled(pixels)
        if pixels.shape[2] == 1:
            return channels[:, :, 0]
        gray = channels[:, :, :3] @ LUMA
        return _composite(gray, channels[:, :, 3]) if pixels.shape[2] == 4 else gray
    if pixels.ndim != 2:
        raise ValueError(
            f"expected an image of shape (height, width) or (height, width, 1, 3 or 4 "
            f"channels); got an array of shape {pixels.shape}"
        )
    return _scaled(pixels)


def _colour_from_array(pixels):
    """Return an ``(h, w)``, ``(h, w, 1|3|4)`` pixel array as RGB levels, alpha composited."""
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        channels = _scaled(pixels)
        if pixels.shape[2] == 3:
            return channels
        rgb = channels[:, :, :3]
        return _composite(rgb @ LUMA, channels[:, :, 3], levels=rgb)
    return np.repeat(_from_array(pixels)[:, :, None], 3, axis=2)


def _scaled(pixels):
    """Return pixels as float64: integers divided by their dtype's maximum, floats as they are."""
    if pixels.dtype.kind not in "biuf":
        raise TypeError(f"image pixels must be numbers; got dtype {pixels.dtype}")
    if pixels.dtype.kind == "b":
        return pixels.astype(np.float64)
    if pixels.dtype.kind in "iu":
        top = np.iinfo(pixels.dtype).max
        if pixels.dtype.itemsize == 4 and pixels.size and pixels.max() <= 65535:
            # PIL reads 16-bit files as 32-bit ints ("I" mode) holding 0..65535.
            top = 65535
        return pixels.astype(np.float64) / top
    return pixels.astype(np.float64)


def _composite(gray, alpha, levels=None):
    """Return ``levels`` (default ``gray``; or RGB) laid over a paper colour by ``alpha``.

    All are 0..1; ``gray`` decides the paper. When most pixels are opaque, the transparent
    ones are margins and get the colour of the opaque page. Otherwise the opaque pixels are
    the strokes of a drawing on a transparent canvas (whose hidden colour is often the ink's
    own), so the paper is the opposite of the strokes: black ink on transparent becomes
    black on white, white ink white on black.
    """
    levels = gray if levels is None else levels
    alpha = np.clip(alpha, 0, 1)
    if alpha.min() >= 1:
        return levels
    opaque = alpha > 0.5
    if opaque.mean() > OPAQUE_PAGE_SHARE:
        paper = np.median(levels[opaque], axis=0)
    else:
        weight = alpha.sum()
        strokes = (gray * alpha).sum() / weight if weight > 0 else 0.0
        paper = 1.0 if strokes < 0.5 else 0.0
    if levels.ndim == 3:
        alpha = alpha[:, :, None]
    return alpha * levels + (1 - alpha) * paper
