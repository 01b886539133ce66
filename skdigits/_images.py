"""How any digit-image input becomes validated rows of pixels with a known image shape.

Both estimators accept flat ``(n, h*w)`` rows, ``(n, h, w)`` images, ``(n, 1, h, w)`` or
``(n, h, w, 1)`` single-channel images, ``(n, h, w, c)`` or ``(n, c, h, w)`` colour images
(c = 3 or 4, flattened one channel plane after another) and DataFrames. Images are flattened
first so that
scikit-learn's validation (dtype, finiteness, feature names, ``n_features_in_``) runs once, on
rows, exactly as it does for any other estimator; the image shape travels beside the rows.
"""

import math
import operator
from numbers import Number

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

# Scaled by the range learned in fit, training pixels lie in 0..1. Pixels this many ranges
# away belong to images on another scale (0..255 against 0..1e-9, say), and would overflow
# the float32 sums inside the network into NaN predictions; they are rejected instead.
MAX_SCALED_PIXEL = 1e6
# Images larger than this a side are refused: far beyond what digits need, and the bound
# keeps a model file from asking for image frames of any size (a 40000x40000 frame would
# take gigabytes to predict one image).
MAX_IMAGE_SIDE = 1024
# Channels of colour images: RGB and RGBA.
COLOUR_CHANNELS = (3, 4)


def infer_image_shape(n_features, image_shape=None):
    """Return the ``(height, width)`` of images stored as rows of ``n_features`` pixels.

    Parameters
    ----------
    n_features : int
        Number of pixels per row.
    image_shape : tuple of two int or None
        Requested shape; one entry may be -1 to infer it, as in ``numpy.reshape``. ``None``
        infers a square shape.

    Returns
    -------
    image_shape : tuple of two int
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"cannot infer the image shape from {n_features} pixels per row: "
                f"{n_features} is not a perfect square. Pass image_shape=(height, width), "
                "or image_shape=(1, -1) to treat each row as a one-pixel-high image."
            )
        return check_image_shape((side, side), name=f"the square shape of {n_features} pixels")
    sides = list(image_shape) if isinstance(image_shape, (tuple, list)) else []
    if len(sides) != 2 or sides.count(-1) > 1:
        raise ValueError(
            f"image_shape must be two positive ints (height, width), one of which may be -1; "
            f"got {image_shape!r}"
        )
    # -1, a side to infer, is the one value beyond the image-shape check.
    check_image_shape([1 if side == -1 else side for side in sides], name="image_shape")
    height, width = (int(side) for side in sides)
    if height == -1 and n_features % width == 0:
        height = n_features // width
    elif width == -1 and n_features % height == 0:
        width = n_features // height
    if height * width != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} does not fit rows of {n_features} pixels"
        )
    return check_image_shape((height, width))


def _rows_layout(n_features, image_shape):
    """Return the channels and ``(height, width)`` of images given as flat rows.

    Rows are single-channel unless ``image_shape`` is given and the rows hold 3 or 4 times
    its pixels: colour planes one after another, as ``images.transpose(0, 3, 1, 2)``
    flattens ``(n, height, width, channels)`` images.
    """
    if image_shape is not None and -1 not in tuple(image_shape):
        height, width = check_image_shape(image_shape)
        for channels in COLOUR_CHANNELS:
            if n_features == channels * height * width:
                return channels, (height, width)
    return 1, infer_image_shape(n_features, image_shape)


def check_image_shape(image_shape, name="image_shape"):
    """Return ``image_shape`` as a ``(height, width)`` tuple of ints, or raise a ValueError.

    The one check of an image shape, used by the estimators, the loaders and the model-file
    reader: two positive ints of at most ``MAX_IMAGE_SIDE``. ``name`` is what the error calls
    the value.
    """
    try:
        height, width = (operator.index(side) for side in image_shape)
        valid = height > 0 and width > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be two positive ints (height, width); got {image_shape!r}")
    if max(height, width) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"{name} {(height, width)} exceeds the {MAX_IMAGE_SIDE} pixels a side skdigits "
            "works with; downscale the images (digits need far fewer pixels)"
        )
    return height, width


def _flatten_images(X):
    """Return ``X`` with image arrays flattened to rows, and the image shape they carried."""
    if sp.issparse(X) or hasattr(X, "iloc") or X is None:
        # DataFrames keep their column names and sparse input gets scikit-learn's own error.
        return X, None
    X = np.asarray(X)
    if X.ndim > 4:
        raise ValueError(
            f"expected rows of pixels (n, height*width) or images (n, height, width); "
            f"got an array with {X.ndim} dimensions, of shape {X.shape}"
        )
    if X.ndim < 3:
        return X, None
    # The row length is spelled out: reshape cannot infer it from -1 when there are no rows.
    rows = (X.shape[0], math.prod(X.shape[1:]))
    if X.ndim == 3:
        return X.reshape(rows), X.shape[1:]
    first, last = X.shape[1], X.shape[3]
    if first == 1:
        return X.reshape(rows), X.shape[2:]
    if last == 1:
        return X.reshape(rows), X.shape[1:3]
    # Colour: rows hold one channel plane after another. Channels last is how numpy, PIL
    # and most image libraries hold colour, so it wins when both ends could be channels.
    if last in COLOUR_CHANNELS:
        return X.transpose(0, 3, 1, 2).reshape(rows), (last, *X.shape[1:3])
    if first in COLOUR_CHANNELS:
        return X.reshape(rows), X.shape[1:]
    raise ValueError(
        f"expected images of 1, 3 (RGB) or 4 (RGBA) channels, of shape (n, channels, height, "
        f"width) or (n, height, width, channels); got an array of shape {X.shape}"
    )


def image_layout(estimator):
    """Return the fitted ``(height, width)``, or ``(channels, height, width)`` for colour."""
    channels = getattr(estimator, "n_channels_", 1)
    return estimator.image_shape_ if channels == 1 else (channels, *estimator.image_shape_)


def _check_same_image_shape(estimator, X, carried_shape):
    """Raise a ValueError naming both shapes if ``X`` holds images of another size than fit."""
    name = type(estimator).__name__
    fitted = image_layout(estimator)
    carried_channels = 1 if carried_shape is None or len(carried_shape) == 2 else carried_shape[0]
    if carried_shape is not None and carried_channels != getattr(estimator, "n_channels_", 1):
        raise ValueError(
            f"X holds images of {carried_channels} channel(s), but {name} was fitted on images "
            f"of {getattr(estimator, 'n_channels_', 1)} channel(s), shape {fitted}; convert "
            "the images (grey or RGB, as in fit) or refit"
        )
    if carried_shape is not None and tuple(carried_shape) != fitted:
        raise ValueError(
            f"X holds images of shape {tuple(carried_shape)}, but {name} was fitted on images "
            f"of shape {fitted}; resize the images or refit"
        )
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {shape[1]} features, but {name} is expecting {estimator.n_features_in_} "
            f"features as input: it was fitted on images of shape {fitted}, and got rows of "
            f"{shape[1]} pixels"
        )


def _label_kind(label):
    """Return what kind of class label ``label`` is: "number", "string", "None" or its type."""
    if label is None:
        return "None"
    if isinstance(label, str):
        return "string"
    if isinstance(label, (Number, np.bool_)):
        return "number"
    return type(label).__name__


def check_label_types(y):
    """Raise a ValueError naming the kinds of label when object labels ``y`` mix them.

    Bytes labels are refused too (scikit-learn refuses them from 1.7 on, and only warns
    before): they print as ``b'...'`` and compare unequal to the strings they spell.
    """
    if y.dtype.kind == "S":
        raise ValueError("y holds bytes labels; decode them to strings first, e.g. y.astype(str)")
    if y.dtype != object:
        return
    kinds = {_label_kind(label) for label in y}
    if "None" in kinds:
        raise ValueError(
            "y contains None: every sample needs a class label; drop the unlabelled samples"
        )
    if len(kinds) > 1:
        raise ValueError(
            f"y mixes labels of different types ({', '.join(sorted(kinds))}); give all labels "
            "one type, e.g. y.astype(str)"
        )


def _as_torch_dtype(X):
    """Return ``X`` in a dtype torch can read: a view where one exists, else a copy."""
    if X.dtype.kind not in "biuf":
        # scikit-learn lets dates and durations through as "numeric".
        raise TypeError(
            f"X has dtype {X.dtype}; pixels must be numbers (bool, int or float). Convert X "
            "with X.astype(float)"
        )
    if X.dtype.kind == "f" and X.dtype.itemsize > 8:
        # torch has no extended precision, and the network computes in float32 anyway;
        # values beyond float64 become inf here and are rejected with the pixel range.
        # scikit-learn checks extended precision for NaN only from 1.7 on: checked here.
        with np.errstate(over="ignore"):
            X64 = X.astype(np.float64)
        if np.isnan(X64).any() or (np.isinf(X64) & np.isinf(X)).any():
            raise ValueError("Input X contains NaN or infinity; drop or replace the broken pixels")
        return X64
    if X.dtype.kind == "u" and X.dtype.itemsize > 1:
        # torch reads uint16, uint32 and uint64 only from 2.3 on: the next wider signed
        # type holds every value (uint64, beyond int64, becomes float64).
        wider = {2: np.int32, 4: np.int64, 8: np.float64}[X.dtype.itemsize]
        return X.astype(wider)
    # torch reads no byte order but the machine's own.
    dtype = np.dtype(f"{X.dtype.kind}{X.dtype.itemsize}")
    return X.view(dtype) if X.dtype.isnative else X.astype(dtype)


def _check_within_learned_range(estimator, X):
    """Raise a ValueError if pixels of ``X``, scaled by ``pixel_range_``, would overflow."""
    low, span = estimator.pixel_range_
    darkest, brightest = X.min(), X.max()
    with np.errstate(over="ignore", invalid="ignore"):
        # The very float32 arithmetic the network does, on the two extreme pixels.
        extremes = np.array([darkest, brightest]).astype(np.float32)
        scaled = scale_pixels(extremes, np.float32(low), np.float32(span))
    if not np.all(np.abs(scaled) <= MAX_SCALED_PIXEL):
        raise ValueError(
            f"X has pixel values from {darkest} to {brightest}, far outside the range "
            f"{low:g} to {low + span:g} that {type(estimator).__name__} learned in fit; "
            "scaled by it, they would overflow float32. Rescale X to the scale of the "
            "training images"
        )


def validate_images(estimator, X, y="no_validation", *, reset):
    """Return ``X`` (and ``y``) validated as rows of pixels, learning or checking the image shape.

    With ``reset=True`` this sets ``n_features_in_``, ``feature_names_in_`` (DataFrames) and
    ``image_shape_`` on ``estimator``; otherwise it checks ``X`` against them and against the
    pixel range learned in fit. The dtype of numeric input is kept (as a dtype torch reads), so
    uint8 images stay uint8 and are converted per batch later. Labels ``y`` must be of one type.
    """
    X, carried_shape = _flatten_images(X)
    if not reset:
        _check_same_image_shape(estimator, X, carried_shape)
    try:
        validated = validate_data(estimator, X, y, reset=reset, dtype="numeric")
    except OverflowError as error:
        # Python ints beyond float64, in object arrays or lists.
        raise ValueError(f"X holds a number too large for float64 ({error}); rescale X") from error
    no_y = y is None or (isinstance(y, str) and y == "no_validation")
    if no_y:
        X = validated
    else:
        X, y = validated
        check_label_types(y)
    X = _as_torch_dtype(X)
    if reset:
        n_features = estimator.n_features_in_
        if carried_shape is None:
            channels, estimator.image_shape_ = _rows_layout(n_features, estimator.image_shape)
        else:
            *planes, height, width = carried_shape
            channels = planes[0] if planes else 1
            estimator.image_shape_ = check_image_shape((height, width), name="the image shape")
            if estimator.image_shape is not None:
                requested = infer_image_shape(n_features // channels, estimator.image_shape)
                if requested != estimator.image_shape_:
                    raise ValueError(
                        f"image_shape={estimator.image_shape} but X holds images of shape "
                        f"{estimator.image_shape_}"
                    )
        estimator.n_channels_ = int(channels)
    else:
        _check_within_learned_range(estimator, X)
    return X if no_y else (X, y)


def pixel_range(X):
    """Return ``(low, span)``: the darkest pixel value and the value range of ``X``, in float32.

    Scaling pixels by ``(x - low) / span`` maps uint8 0..255, floats 0..1, 0..16 and -1..1
    alike onto 0..1, so users never rescale by hand.
    """
    darkest, brightest = X.min(), X.max()
    with np.errstate(over="ignore", invalid="ignore"):
        # Values beyond float32 become inf or NaN here, and are reported below.
        low = np.float32(darkest)
        span = np.float32(brightest) - low
    if not (np.isfinite(low) and np.isfinite(span)):
        raise ValueError(
            f"pixel values from {darkest} to {brightest} do not fit in float32, the network's "
            f"precision, which holds up to {np.finfo(np.float32).max:.1e}; rescale X"
        )
    # Constant images carry no contrast to normalise; leave them unscaled.
    return float(low), float(span) if span > 0 else 1.0


def scale_pixels(x, low, span):
    """Return float32 pixels ``x`` mapped by the learned range (numpy arrays or torch tensors).

    The one formula both estimators use, so ImageTransformer followed by the classifier sees
    exactly the numbers the classifier alone would.
    """
    return (x - low) / span
