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
        return _read_file(Path(source))
    if isinstance(source, Image.Image):
        return _from_pil(source)
    return _from_array(np.asarray(source))


def _read_file(path):
    """Return the gray levels of the image file ``path``, bounded in time and memory."""
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            # PIL only warns between its limit and twice it; both are decompression bombs here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                # JPEGs decode straight to a smaller scale; a no-op for other formats.
                image.draft(None, (MAX_SIDE, MAX_SIDE))
                return _from_pil(image)
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
    return _from_array(np.asarray(image))


def _from_array(pixels):
    """Return an ``(h, w)``, ``(h, w, 1|3|4)`` pixel array as gray levels, alpha composited."""
    if pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4):
        channels = _scaled(pixels)
        if pixels.shape[2] == 1:
            return channels[:, :, 0]
        # ITU-R 601 luma, the weights PIL's convert("L") uses.
        gray = channels[:, :, :3] @ np.array([0.299, 0.587, 0.114])
        return _composite(gray, channels[:, :, 3]) if pixels.shape[2] == 4 else gray
    if pixels.ndim != 2:
        raise ValueError(
            f"expected an image of shape (height, width) or (height, width, 1, 3 or 4 "
            f"channels); got an array of shape {pixels.shape}"
        )
    return _scaled(pixels)


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


def _composite(gray, alpha):
    """Return ``gray`` laid over a paper colour by ``alpha`` (both 0..1).

    When most pixels are opaque, the transparent ones are margins and get the colour of the
    opaque page. Otherwise the opaque pixels are the strokes of a drawing on a transparent
    canvas (whose hidden colour is often the ink's own), so the paper is the opposite of the
    strokes: black ink on transparent becomes black on white, white ink white on black.
    """
    alpha = np.clip(alpha, 0, 1)
    if alpha.min() >= 1:
        return gray
    opaque = alpha > 0.5
    if opaque.mean() > OPAQUE_PAGE_SHARE:
        paper = np.median(gray[opaque])
    else:
        weight = alpha.sum()
        strokes = (gray * alpha).sum() / weight if weight > 0 else 0.0
        paper = 1.0 if strokes < 0.5 else 0.0
    return alpha * gray + (1 - alpha) * paper
