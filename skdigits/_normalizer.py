"""DigitNormalizer: turn digit images of any size and kind into MNIST-style framed digits."""

import math
from numbers import Integral

import numpy as np
import scipy.ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import disk, skeletonize
from skimage.transform import resize
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._compat import Interval, StrOptions, _fit_context
from ._images import check_image_shape, infer_image_shape
from ._reading import read_gray
from ._state import checked, field, is_dict, is_int, is_number, params_from_state, to_plain

# MNIST's framing: the ink scaled to fit a 20x20 box, centred by mass in a 28x28 frame. Used
# when the training images show no framing of their own (raw scans of any size).
MNIST_SHAPE = (28, 28)
MNIST_BOX_FRACTION = 20 / 28
# Ink must stand out from the paper by this many times the paper's noise (its robust standard
# deviation); a blank, noisy page splits into two classes only about 2.3 noise widths apart.
MIN_CONTRAST_TO_NOISE = 4.0
# On pages that are nearly all paper (a thin pen), pixels this many noise widths from the
# paper level are ink, and a page needs this many of them.
SPARSE_INK_WIDTHS = 6.0
MIN_INK_PIXELS = 8
# Paper pixels brighter than the paper level by this many noise widths count as ink.
NOISE_WIDTHS = 3.0
# A connected piece of ink lighter than this share of the heaviest piece is a speck of dirt
# or noise, not part of the digit.
SPECK_FRACTION = 0.02
# Border and area shares of light pixels beyond these bounds decide the polarity of an image;
# between them the image is ambiguous (a digit filling its frame) and the training images'
# polarity decides.
CLEAR_BORDER = (0.25, 0.75)
CLEAR_AREA = (0.35, 0.65)
# Frames of at most this many pixels a side are a digit dataset's (8x8, 16x16, MNIST's
# 28x28), not photos or scans of a page.
SMALL_FRAME = 32
# Images are framed digits when this share of them has an ink box within 10% (at least one
# pixel) of the typical size, and their reference points scatter by at most 10% of the frame.
FRAMED_SHARE = 0.8
FRAMED_TOLERANCE = 0.1
# Pixel differences below this (on a 0..1 scale) are round-off, not ink.
ROUND_OFF = 1e-9
# MNIST's stroke widths (ink per pixel of skeleton) as fractions of its 20-pixel box: 5th
# percentile and median. Thinner strokes of downscaled digits are widened to the median.
THIN_STROKE = 1.7 / 20
TYPICAL_STROKE = 2.6 / 20
# fit learns the framing from at most this many images, spread evenly over the data.
FIT_SAMPLE = 3000


NO_INK = (
    "no ink stands out from the paper (a blank or noise-only page); crop the image to the "
    "digit or check the file"
)


class NoInkError(ValueError):
    """Raised for an image in which no ink stands out from the paper."""


class DigitNormalizer(TransformerMixin, BaseEstimator):
    """Normalise digit images of any size and kind the way MNIST was made.

    Each image (a file, a PIL image or an array, of any size, in gray, RGB, RGBA, 16-bit or
    palette mode) is read as gray levels; its ink is separated from the paper and turned
    into light ink on a dark background, cropped to its bounding box, scaled to fit a box
    keeping its aspect ratio, and placed in a frame, centred by its centre of mass or by its
    box. ``fit`` learns that framing from the training images, so the same pipeline sees
    users' photos and scans framed as the images it was trained on:

    - training images that show one consistent framing (MNIST: a 20x20 box centred by mass
      in 28x28; scikit-learn's 8x8 digits: filling the frame) give that framing;
    - training images of mixed sizes, or with the digit anywhere on the page (raw scans),
      get MNIST's framing in a 28x28 frame.

    Separating ink from paper, per image:

    1. Polarity: the paper is what fills the border (and most of the area) after an Otsu
       threshold, so dark ink on light paper and light ink on dark are both read without an
       ``--invert``. Images whose border and area do not tell (a digit filling its frame)
       take the polarity of the training images; in frames of 32 pixels or less, which a
       bold digit can mostly fill, the area counts only where the border agrees.
    2. Uneven paper tone: a smooth quadratic surface is fitted to the paper pixels and
       subtracted, twice, each time with a new Otsu threshold. A page most of whose border
       lies far from that surface, or whose evened page shows no ink, is taken as it is:
       the surface was fitted to the strokes of a bold digit filling its frame.
    3. Noise: pixels within three noise widths (robust standard deviation of the paper) of
       the paper level become paper, the typical ink level becomes full ink, and connected
       pieces of ink lighter than 2% of the heaviest piece are removed as specks (and the
       ink measured again without them when they are as dark as the strokes). On a page
       that is nearly all paper (a fine pen on a large sheet), where Otsu's threshold would
       split the paper's noise, the ink is what lies six noise widths or more from it.
    4. Stroke width: a digit scaled down so far that its strokes would be thinner than
       nearly all of MNIST's (a fine pen) has them widened to MNIST's typical width.

    An image in which no ink stands out from the paper raises a ``ValueError``.

    Parameters
    ----------
    image_shape : tuple of two int, default=None
        ``(height, width)`` of the output images. ``None`` learns it in ``fit``: the shape
        of framed training images, else MNIST's 28x28.
    box : int, default=None
        Side of the square box the ink is scaled to fit, in output pixels. ``None`` learns
        it in ``fit``: the typical ink size of framed training images, else 20/28 of the
        frame as in MNIST.
    centering : {"auto", "mass", "box"}, default="auto"
        Place the ink by its centre of mass (as MNIST) or by the centre of its box; "auto"
        learns which one the training images follow (mass for images that are not framed).
    ink : {"auto", "dark", "light"}, default="auto"
        Whether the ink is darker or lighter than the paper; "auto" decides per image.

    Attributes
    ----------
    image_shape_ : tuple of two int
        ``(height, width)`` of the output images.
    box_ : int
        Side of the box the ink is scaled to fit.
    centering_ : {"mass", "box"}
        How the ink is placed in the frame.
    center_ : tuple of two float
        Row and column, in output pixels, where the centre of mass (or of the box) goes.
    ink_ : {"dark", "light"}
        The training images' polarity, used for images whose own polarity is ambiguous.
    framed_ : bool
        Whether the framing was learned from the training images (False: MNIST's framing).

    See Also
    --------
    CNNDigitClassifier : The classifier to put after it in a pipeline.
    skdigits.datasets.load_image : Read one image file as gray pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from skdigits import DigitNormalizer
    >>> from skdigits.datasets import load_digits
    >>> X, y = load_digits()
    >>> normalizer = DigitNormalizer().fit(X)
    >>> normalizer.image_shape_, normalizer.box_, normalizer.centering_
    ((8, 8), 8, 'box')

    A scan-like page: a dark digit off-centre on light paper, much larger than the frame.

    >>> page = np.full((60, 90), 0.9)
    >>> page[10:50, 50:74] -= np.kron(X[0].reshape(8, 8) / 20, np.ones((5, 3)))
    >>> normalizer.transform([page]).shape
    (1, 8, 8)
    """

    _parameter_constraints: dict = {
        "image_shape": [tuple, list, None],
        "box": [Interval(Integral, 1, None, closed="left"), None],
        "centering": [StrOptions({"auto", "mass", "box"})],
        "ink": [StrOptions({"auto", "dark", "light"})],
    }

    def __init__(self, *, image_shape=None, box=None, centering="auto", ink="auto"):
        self.image_shape = image_shape
        self.box = box
        self.centering = centering
        self.ink = ink

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the framing and polarity of the training images ``X``.

        Parameters
        ----------
        X : list of images, or array-like of shape (n_samples, n_pixels), \
                (n_samples, height, width) or (n_samples, height, width, channels)
            Image files, PIL images or arrays of any sizes; flat rows are square images.
        y : None
            Ignored.

        Returns
        -------
        self : DigitNormalizer
            The fitted normaliser.
        """
        images = as_image_list(X)
        step = max(1, len(images) // FIT_SAMPLE)
        self._learn([read_ink(images, i, self.ink, None) for i in range(0, len(images), step)])
        return self

    def fit_transform(self, X, y=None):
        """Learn the framing of ``X`` and return ``X`` normalised, reading each image once.

        Parameters
        ----------
        X : list of images, or array-like of shape (n_samples, n_pixels), \
                (n_samples, height, width) or (n_samples, height, width, channels)
            Image files, PIL images or arrays of any sizes; flat rows are square images.
        y : None
            Ignored.

        Returns
        -------
        images : ndarray of shape (n_samples, height, width), dtype float32
            Ink from 0 (paper) to 1 (full ink), in frames of ``image_shape_``.
        """
        images = as_image_list(X)
        if len(images) > FIT_SAMPLE:
            return self.fit(images).transform(images)
        self._validate_params()
        measured = [read_ink(images, i, self.ink, None) for i in range(len(images))]
        self._learn(measured)
        out = np.zeros((len(images), *self.image_shape_), dtype=np.float32)
        for i, m in enumerate(measured):
            if not m.clear and m.polarity != self.ink_:
                # Ambiguous images take the training images' polarity, as in transform.
                m = read_ink(images, i, self.ink_, None)
            out[i] = self._frame(m.ink)
        return out

    def _learn(self, sample):
        """Set the fitted attributes from the measured training images ``sample``."""
        if not sample:
            raise ValueError("DigitNormalizer needs at least one image to fit")
        shape = None if self.image_shape is None else check_image_shape(self.image_shape)
        self.ink_ = self.ink if self.ink != "auto" else _majority_polarity(sample)
        in_shapes = {m.frame for m in sample}
        framed = len(in_shapes) == 1 and _is_framed(sample, self.centering)
        self.framed_ = framed
        if framed:
            (in_shape,) = in_shapes
            self.image_shape_ = shape or in_shape
            factor = min(self.image_shape_[0] / in_shape[0], self.image_shape_[1] / in_shape[1])
            self.centering_ = _best_centering(sample, self.centering)
            points = np.array([m.reference(self.centering_) for m in sample])
            self.center_ = tuple(float(c) for c in np.median(points, axis=0) * factor)
            box = np.median([max(m.box) for m in sample]) * factor
        else:
            self.image_shape_ = shape or MNIST_SHAPE
            self.centering_ = "mass" if self.centering == "auto" else self.centering
            self.center_ = (self.image_shape_[0] / 2, self.image_shape_[1] / 2)
            box = MNIST_BOX_FRACTION * min(self.image_shape_)
        self.box_ = int(self.box if self.box is not None else max(1, round(box)))
        if self.box_ > min(self.image_shape_):
            raise ValueError(
                f"box={self.box_} does not fit in images of shape {self.image_shape_}; "
                "use a smaller box or a larger image_shape"
            )

    def transform(self, X):
        """Return the images of ``X`` normalised: light ink on black, framed as in ``fit``.

        Parameters
        ----------
        X : list of images, or array-like of shape (n_samples, n_pixels), \
                (n_samples, height, width) or (n_samples, height, width, channels)
            Image files, PIL images or arrays of any sizes; flat rows are square images.

        Returns
        -------
        images : ndarray of shape (n_samples, height, width), dtype float32
            Ink from 0 (paper) to 1 (full ink), in frames of ``image_shape_``.
        """
        check_is_fitted(self)
        images = as_image_list(X)
        out = np.zeros((len(images), *self.image_shape_), dtype=np.float32)
        for i in range(len(images)):
            out[i] = self._frame(read_ink(images, i, self.ink, self.ink_).ink)
        return out

    def _frame(self, ink):
        """Return the ink of one image cropped, scaled and placed in the learned frame."""
        (top, bottom), (left, right) = _bounds(ink)
        crop = ink[top:bottom, left:right]
        height, width = self.image_shape_
        scale = min(min(self.box_, height) / crop.shape[0], min(self.box_, width) / crop.shape[1])
        if scale < 1:
            crop = _thicken(crop, scale, self.box_)
        if scale != 1:
            size = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
            crop = resize(crop, size, order=1, anti_aliasing=scale < 1, mode="constant")
        if self.centering_ == "mass":
            reference = ndi.center_of_mass(crop)
        else:
            reference = ((crop.shape[0] - 1) / 2, (crop.shape[1] - 1) / 2)
        row = int(np.clip(round(self.center_[0] - reference[0]), 0, height - crop.shape[0]))
        col = int(np.clip(round(self.center_[1] - reference[1]), 0, width - crop.shape[1]))
        framed = np.zeros(self.image_shape_, dtype=np.float32)
        framed[row : row + crop.shape[0], col : col + crop.shape[1]] = np.clip(crop, 0, 1)
        return framed

    def to_state(self):
        """Return the fitted normaliser as plain data: a JSON-able dict.

        What a model file stores; :meth:`from_state` rebuilds the normaliser from it.

        Returns
        -------
        state : dict
            ``{"params": ..., "attributes": ...}``: the parameters and fitted attributes.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skdigits import DigitNormalizer
        >>> X, _ = load_digits(return_X_y=True)
        >>> state = DigitNormalizer().fit(X[:50]).to_state()
        >>> state["attributes"]["box_"]
        8
        >>> DigitNormalizer.from_state(state).centering_
        'box'
        """
        check_is_fitted(self)
        attributes = {name: write(getattr(self, name)) for name, (write, _) in _ATTRIBUTES.items()}
        return to_plain({"params": self.get_params(), "attributes": attributes})

    @classmethod
    def from_state(cls, state):
        """Return the fitted normaliser that :meth:`to_state` gave as plain data.

        Every parameter and attribute is checked for type and range; the frame is bounded
        as images are (see docs/persistence.md).

        Parameters
        ----------
        state : dict
            The parameters and fitted attributes, as JSON gives them back.

        Returns
        -------
        normalizer : DigitNormalizer
            The fitted normaliser.

        Raises
        ------
        ValueError
            If a field is missing, of the wrong type or out of range; the message names it.
        """
        checks = {
            "image_shape": (lambda value: value is None or isinstance(value, list), "a list"),
            # A bool is an int to the parameter constraints; here it can only be a mistake.
            "box": (lambda box: box is None or is_int(box), "null or an int"),
        }
        stored = field(state, "params", is_dict, "an object")
        normalizer = cls(**params_from_state(cls, stored, checks))
        normalizer._validate_params()
        if normalizer.image_shape is not None:
            checked("image_shape", check_image_shape, normalizer.image_shape)
        attributes = field(state, "attributes", is_dict, "an object")
        for name, (_, read) in _ATTRIBUTES.items():
            value = field(attributes, name, lambda _: True, "")
            setattr(normalizer, name, checked(name, read, value))
        frame = normalizer.image_shape_
        if normalizer.box_ > min(frame):
            raise ValueError(f"'box_' {normalizer.box_} does not fit in the frame {frame}")
        if not all(0 <= c <= side for c, side in zip(normalizer.center_, frame, strict=True)):
            raise ValueError(f"'center_' {normalizer.center_} lies outside the frame {frame}")
        return normalizer

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.requires_fit = True
        return tags


def _choice(*options):
    """Return a reader of a stored value that must be one of ``options``."""

    def read(value):
        if value not in options:
            raise ValueError(f"should be one of {list(options)}; got {value!r:.80}")
        return value

    return read


def _point(value):
    """Return a stored point: two finite numbers."""
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(is_number(c) and math.isfinite(c) for c in value)
    ):
        raise ValueError(f"should be two finite numbers; got {value!r:.80}")
    return tuple(float(c) for c in value)


def _positive_int(value):
    if not (is_int(value) and value > 0):
        raise ValueError(f"should be a positive int; got {value!r:.80}")
    return value


def _bool(value):
    if not isinstance(value, bool):
        raise ValueError(f"should be a bool; got {value!r:.80}")
    return value


# The fitted attributes, in one place: how each is written as JSON and read back (checked,
# then converted to the type the normaliser keeps).
_ATTRIBUTES = {
    "image_shape_": (list, lambda value: check_image_shape(value, name="image_shape_")),
    "box_": (int, _positive_int),
    "centering_": (str, _choice("mass", "box")),
    "center_": (list, _point),
    "ink_": (str, _choice("dark", "light")),
    "framed_": (bool, _bool),
}


def as_image_list(X):
    """Return ``X`` as a list of single images (paths, PIL images or 2-D/3-D arrays)."""
    if _is_path(X):
        raise TypeError(
            f"expected a list of images, got a single {type(X).__name__}; wrap it in a list: "
            "[path]"
        )
    if hasattr(X, "iloc"):
        X = X.to_numpy()
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 2:
            side = infer_image_shape(X.shape[1])
            return list(X.reshape(len(X), *side))
        if X.ndim == 4 and X.shape[1] == 1:
            return list(X[:, 0])
        if X.ndim in (3, 4):
            return list(X)
        raise ValueError(
            f"expected rows of pixels, (n, height, width) images or (n, height, width, "
            f"channels) images; got an array of shape {X.shape}"
        )
    try:
        return list(X)
    except TypeError:
        raise TypeError(
            f"expected a list of images or an array of images; got {type(X).__name__}"
        ) from None


def read_ink(images, index, ink, prior):
    """Return the measured ink of ``images[index]``; errors name the file or the position."""
    image = images[index]
    try:
        return _measure(read_gray(image), ink, prior)
    except NoInkError as error:
        raise NoInkError(f"{_name(image, index)}: {error}") from None
    except (ValueError, TypeError) as error:
        if _is_path(image):
            raise  # the reader's errors name the file already
        raise type(error)(f"{_name(image, index)}: {error}") from None


def _name(image, index):
    """Return how to name ``image`` in an error: its path, or its position in the input."""
    return str(image) if _is_path(image) else f"image {index}"


def _is_path(image):
    """Return whether ``image`` names a file rather than holding pixels."""
    return isinstance(image, (str, bytes)) or hasattr(image, "__fspath__")


class _Measured:
    """The ink of one image and where it lies in the image's frame."""

    def __init__(self, ink, polarity, clear):
        self.ink = ink
        self.frame = ink.shape
        self.polarity = polarity
        self.clear = clear
        rows, cols = _bounds(ink)
        self.box = (rows[1] - rows[0], cols[1] - cols[0])
        self.box_center = ((rows[0] + rows[1] - 1) / 2, (cols[0] + cols[1] - 1) / 2)

    def reference(self, centering):
        if centering == "mass":
            return ndi.center_of_mass(self.ink)
        return self.box_center


def _measure(gray, ink, prior):
    """Return the separated ink of ``gray`` with its polarity; raise NoInkError if none."""
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a 2-D image with pixels; got shape {gray.shape}")
    if not np.all(np.isfinite(gray)):
        raise ValueError("the image holds NaN or infinite pixels")
    result, polarity, clear, paper, strokes = _separate_ink(gray, ink, prior)
    specks = _specks(result)
    if (specks & strokes).any():
        # A speck as dark as the strokes weighs on the ink's measure even though it is
        # removed: it can widen the gray range that Otsu's histogram spans, and its pixels
        # count among the strokes whose median is full ink. Three such pixels changed
        # normalised pages by up to 0.15 (noise-free) and 0.54 (blurred, the digit's box
        # moving with its ink) in tests/test_normalizer.py. The ink is then measured again
        # with the specks painted over in the paper's tone, as if they had never been
        # there. (Fainter specks, the paper's noise, change neither.)
        gray = np.where(specks, paper, gray)
        result, polarity, clear, *_ = _separate_ink(gray, ink, prior)
        specks = _specks(result)
    result[specks] = 0
    return _Measured(result, polarity, clear)


def _separate_ink(gray, ink, prior):
    """Return the ink of ``gray`` (0 paper to 1 full ink), before specks are removed.

    Also returns the ink's polarity, whether it was clear, the paper's gray level at each
    pixel (the smooth surface fitted to the paper) and where the strokes are (the pixels
    the ink level is the median of). Raises NoInkError if no ink stands out.
    """
    low, high = gray.min(), gray.max()
    if not high > low:
        raise NoInkError("the image is blank: every pixel has the same value")
    page = (gray - low) / (high - low)
    flat = _flatten_paper(page)
    try:
        polarity, clear, x, paper_level, ink_level, noise, split = _split(flat, ink, prior)
    except NoInkError:
        if flat is page:
            raise
        # Evening the paper is there to help find the ink. Where the evened page shows none,
        # the surface was fitted to the strokes (a bold digit filling its frame): the page
        # is measured as it is.
        polarity, clear, x, paper_level, ink_level, noise, split = _split(page, ink, prior)
    # The round-off of the paper flattening (1e-16, more with some numpy versions) must not
    # count as ink on noise-free pages, where the floor would be the paper level itself.
    floor = min(paper_level + NOISE_WIDTHS * noise + ROUND_OFF, (paper_level + ink_level) / 2)
    result = np.clip((x - floor) / (ink_level - floor), 0, 1)
    # x is the even page, ink up, on a 0..1 scale: its paper level back on gray's scale.
    paper = gray - (high - low) * (x - paper_level) * (-1 if polarity == "dark" else 1)
    return result, polarity, clear, paper, x > split


def _split(flat, ink, prior):
    """Return what ``_split_by_otsu`` does, by Otsu's threshold or else by the paper's noise."""
    # Levels that differ by round-off alone are made equal: a few gray levels (a drawing's,
    # or 17 on a synthetic page) can sit on the edges of Otsu's histogram, where round-off
    # (which differs between numpy versions) would move the threshold by a whole level.
    flat = np.round(flat / ROUND_OFF) * ROUND_OFF
    try:
        return _split_by_otsu(flat, ink, prior)
    except NoInkError:
        # Otsu's threshold splits two classes of similar weight. A thin pen on a large page
        # leaves so little ink that the threshold splits the paper's noise instead; the ink
        # is then what lies far outside that noise.
        return _split_by_noise(flat, ink)


def _split_by_otsu(flat, ink, prior):
    """Return the polarity, whether it was clear, the ink-up image, its levels and noise.

    Paper and ink are the two classes of Otsu's threshold, which is returned last (the
    strokes are the pixels above it); raises NoInkError when the ink class does not stand
    out from the paper's noise.
    """
    clear = True
    if ink == "auto":
        polarity, clear = _polarity(flat, prior)
    else:
        polarity = ink
    x = -flat if polarity == "dark" else flat
    threshold = threshold_otsu(x)
    paper, strokes = x[x <= threshold], x[x > threshold]
    paper_level, ink_level = np.median(paper), np.median(strokes)
    noise = 1.4826 * np.median(np.abs(paper - paper_level))
    if ink_level - paper_level <= MIN_CONTRAST_TO_NOISE * noise:
        # The paper class also holds the strokes' soft edges. In a small frame filled by a
        # bold digit (USPS's 16x16 scans) they are so many that the spread on both sides of
        # the paper level makes the digit look like noise; the paper's own noise is
        # symmetric, so its side away from the ink measures it too.
        noise = 1.4826 * np.median(paper_level - paper[paper <= paper_level])
        _check_contrast(paper_level, ink_level, noise)
    return polarity, clear, x, paper_level, ink_level, noise, threshold


def _split_by_noise(flat, ink):
    """Return what ``_split_by_otsu`` does, for pages that are nearly all paper.

    The paper is the median gray level, its noise the robust spread of all pixels; the ink
    is the pixels more than ``SPARSE_INK_WIDTHS`` noise widths away, on the side where most
    of them lie (or the side ``ink`` says).
    """
    level = np.median(flat)
    noise = 1.4826 * np.median(np.abs(flat - level))
    reach = SPARSE_INK_WIDTHS * noise + 1e-12
    dark, light = np.sum(flat < level - reach), np.sum(flat > level + reach)
    polarity = ink if ink != "auto" else ("dark" if dark > light else "light")
    x = -flat if polarity == "dark" else flat
    paper_level = -level if polarity == "dark" else level
    strokes = x[x > paper_level + reach]
    if strokes.size < MIN_INK_PIXELS:
        raise NoInkError(NO_INK)
    ink_level = np.median(strokes)
    _check_contrast(paper_level, ink_level, noise)
    # The polarity is clear when one side holds clearly more of the far pixels.
    clear = ink != "auto" or max(dark, light) > 2 * min(dark, light)
    return polarity, clear, x, paper_level, ink_level, noise, paper_level + reach


def _check_contrast(paper_level, ink_level, noise):
    """Raise a NoInkError unless the ink level stands out from the paper's noise."""
    if ink_level - paper_level <= MIN_CONTRAST_TO_NOISE * noise:
        raise NoInkError(NO_INK)


def _polarity(gray, prior):
    """Return ("dark" or "light" ink, whether the image itself decided it)."""
    light = gray > threshold_otsu(gray)
    border = _border(light).mean()
    area = light.mean()
    # Light paper around the digit means dark ink, and the other way round.
    if border >= CLEAR_BORDER[1]:
        return "dark", True
    if border <= CLEAR_BORDER[0]:
        return "light", True
    # Paper is most of the area, except in a small frame that a bold digit fills (USPS's and
    # Semeion's 16x16 scans): there the area decides only where the border leans its way.
    small = max(gray.shape) <= SMALL_FRAME
    if area >= CLEAR_AREA[1] and not (small and border <= 0.5):
        return "dark", True
    if area <= CLEAR_AREA[0] and not (small and border >= 0.5):
        return "light", True
    if prior is not None:
        return prior, False
    return ("dark" if light.mean() > 0.5 else "light"), False


def _border(image):
    """Return the pixels on the edge of ``image``, each once."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _flatten_paper(gray):
    """Return ``gray`` minus a smooth surface fitted to its paper, evening the paper tone.

    The surface is quadratic, so it follows shading and gradients of the paper but never
    the strokes, and it is fitted robustly (starting from the pixels near the most common
    gray level, then leaving out those more than three noise widths off, three times over),
    so the ink, dark or light, does not pull it: the polarity is decided afterwards, on the
    even page.
    """
    height, width = gray.shape
    if min(height, width) < 16:
        return gray
    values = gray.reshape(-1)
    # A few thousand pixels pin down six coefficients; every pixel would be slow.
    sample = np.arange(0, values.size, max(1, values.size // 8192))
    r, c = _unit_grid(height, sample // width), _unit_grid(width, sample % width)
    terms = np.stack([np.ones_like(r), r, c, r**2, r * c, c**2], axis=-1)
    values = values[sample]
    # The fit starts from the gray levels near the most common one, the paper's, within half
    # the interquartile range, and then widens to every pixel near the surface.
    counts, edges = np.histogram(values, bins=64)
    mode = (edges[counts.argmax()] + edges[counts.argmax() + 1]) / 2
    low, high = np.percentile(values, [25, 75])
    inliers = np.abs(values - mode) <= max((high - low) / 2, edges[1] - edges[0])
    for _ in range(3):
        coefficients, *_ = np.linalg.lstsq(terms[inliers], values[inliers], rcond=None)
        residual = values - terms @ coefficients
        # The paper's own spread, measured on the current paper pixels only: on a page that
        # is a third ink, the spread of all pixels would let the ink back in.
        paper = residual[inliers]
        center = np.median(paper)
        spread = 1.4826 * np.median(np.abs(paper - center))
        inliers = np.abs(residual - center) <= NOISE_WIDTHS * spread + 1e-12
        if inliers.mean() < 0.5:
            return gray
    # The surface over every pixel, from its rows' and columns' terms.
    r, c = _unit_grid(height)[:, None], _unit_grid(width)
    c0, c_r, c_c, c_rr, c_rc, c_cc = coefficients
    flat = gray - (c0 + r * (c_r + c_rr * r) + c * (c_c + c_cc * c) + c_rc * r * c)
    if np.mean(np.abs(_border(flat) - center) <= NOISE_WIDTHS * spread + 1e-12) < 0.5:
        # The paper surrounds the digit. A surface that most of the border is far from was
        # fitted to the strokes: a bold digit filling a small frame (USPS's 16x16 scans)
        # covers more of it than the paper does, and evening it would turn the page inside
        # out.
        return gray
    return flat


def _unit_grid(n, index=None):
    """Return the positions of ``n`` pixels (or those at ``index``) spread evenly over -1..1."""
    index = np.arange(n) if index is None else index
    return -1 + 2 * index / (n - 1)


def _specks(ink):
    """Return where ``ink`` holds connected pieces too light to belong to the digit."""
    labels, count = ndi.label(ink > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return np.zeros(ink.shape, dtype=bool)
    mass = np.bincount(labels.ravel(), weights=ink.ravel())
    mass[0] = 0
    speck = mass < SPECK_FRACTION * mass.max()
    speck[0] = False
    return speck[labels]


def _thicken(crop, scale, box):
    """Return ``crop`` with its strokes widened if scaling by ``scale`` would leave them thin.

    A digit written large with a fine pen keeps its fine strokes when scaled down: a 2-pixel
    line on a 100-pixel digit becomes a faint 0.4-pixel trace in a 20-pixel box, unlike
    any MNIST stroke. Strokes whose scaled width (ink per pixel of skeleton) is below MNIST's
    5th percentile, relative to the ``box`` the ink is scaled into, are dilated to MNIST's
    median width.
    """
    skeleton = skeletonize(crop > 0.5).sum()
    if not skeleton:
        return crop
    width = crop.sum() / skeleton
    if width * scale >= THIN_STROKE * box:
        return crop
    radius = round((TYPICAL_STROKE * box / scale - width) / 2)
    return ndi.grey_dilation(crop, footprint=disk(radius)) if radius > 0 else crop


def _bounds(ink):
    """Return ``((top, bottom), (left, right))``, the half-open bounding box of the ink."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


def _majority_polarity(sample):
    """Return the polarity most training images clearly show ("light" if none does)."""
    dark = sum(m.clear and m.polarity == "dark" for m in sample)
    light = sum(m.clear and m.polarity == "light" for m in sample)
    return "dark" if dark > light else "light"


def _is_framed(sample, centering):
    """Return whether training images of one shape show one consistent framing."""
    sizes = np.array([max(m.box) for m in sample], dtype=float)
    typical = np.median(sizes)
    tolerance = max(1.0, FRAMED_TOLERANCE * typical)
    if np.mean(np.abs(sizes - typical) <= tolerance) < FRAMED_SHARE:
        return False
    scatter = _scatter(sample, _best_centering(sample, centering))
    return scatter <= max(1.0, FRAMED_TOLERANCE * min(sample[0].frame))


def _best_centering(sample, centering):
    """Return the centering the training images follow: the one whose points scatter less."""
    if centering != "auto":
        return centering
    return min(("mass", "box"), key=lambda how: _scatter(sample, how))


def _scatter(sample, centering):
    """Return how far, typically, the images' reference points lie from their median."""
    points = np.array([m.reference(centering) for m in sample])
    return float(np.median(np.linalg.norm(points - np.median(points, axis=0), axis=1)))
