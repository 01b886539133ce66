"""Reading numbers: a line of handwritten digits, segmented and classified one by one."""

import numpy as np
import scipy.ndimage as ndi
from sklearn.pipeline import Pipeline

from ._normalizer import DigitNormalizer, as_image_list, read_ink
from ._pretrained import _predicting_model

# Two pieces of ink belong to one digit when their column spans overlap by at least this share
# of the narrower one: the bar and the body of a 5, the two strokes of a 4. Neighbouring
# digits written close together overlap by a sliver at most.
SAME_DIGIT_OVERLAP = 0.5
# A piece of ink this many times wider than tall may be touching digits; it is tried cut at
# this many columns, in at most this many rounds (three touching digits need two).
TOUCHING_ASPECT = 1.0
MAX_CUTS = 3
CUT_CANDIDATES = 5
# A cut is kept when the model's probability for both halves beats the whole's by this much.
# 0 suits a model whose probabilities are calibrated (temperature-scaled, as the bundled one
# is): such a model is sure of a single wide digit, so its halves rarely beat it. The
# earlier bundled model, never temperature-scaled, was underconfident and needed 0.1.
CUT_MARGIN = 0.0
# Each digit is cut out with a margin of paper this share of its height on every side, so
# that it is framed like a digit on a page.
MARGIN = 0.25


def read_numbers(model, images, *, cut_touching=True):
    """Return the number written on one line in each image, and the confidence of each.

    The ink of each image is separated from the paper as :class:`DigitNormalizer` does, cut
    into connected pieces, and pieces whose column spans overlap (by at least half the
    narrower one) are joined into one digit. A piece wider than tall is tried as two
    touching digits, cut at the columns with least ink in its middle half, and kept cut
    when ``model`` is surer of the two halves (the product of their probabilities) than of
    the whole. The digits, left to right, are classified by ``model`` and their labels joined
    into a string.

    Parameters
    ----------
    model : Pipeline or FineTunedClassifier
        A fitted pipeline starting with a :class:`DigitNormalizer`, whose classes are the
        ten digits, such as :func:`skdigits.load_pretrained`'s, or a fitted
        :class:`FineTunedClassifier` of one.
    images : list of images
        Image files, PIL images or 2-D arrays, each showing one number on one line.
    cut_touching : bool, default=True
        Try wide pieces of ink as touching digits. False reads each piece as one digit.

    Returns
    -------
    numbers : list of str
        The digits read in each image, left to right, e.g. ``"2024"``.
    confidence : ndarray of shape (n_images,)
        The product of the probabilities of the digits read: the probability that the whole
        number is right if the digits' errors are independent.

    Raises
    ------
    TypeError
        If ``model`` is not a pipeline starting with a DigitNormalizer.
    ValueError
        If an image holds no ink, or cannot be read.

    Examples
    --------
    >>> import skdigits
    >>> model = skdigits.load_pretrained()
    >>> numbers, confidence = skdigits.read_numbers(model, ["number.png"])  # doctest: +SKIP
    """
    model = _predicting_model(model)
    if not (isinstance(model, Pipeline) and isinstance(model[0], DigitNormalizer)):
        raise TypeError(
            "read_numbers needs a fitted pipeline starting with a DigitNormalizer, such as "
            f"skdigits.load_pretrained(); got {type(model).__name__}"
        )
    normalizer = model[0]
    images = as_image_list(images)
    pieces = [
        (index, digit)
        for index in range(len(images))
        for digit in split_digits(read_ink(images, index, normalizer.ink, normalizer.ink_).ink)
    ]
    # The digits of every image go to the model together: one call per round, not per image.
    if cut_touching:
        pieces = _split_touching(model, pieces)
    owners = np.array([owner for owner, _ in pieces])
    proba = model.predict_proba([digit for _, digit in pieces])
    labels = model.classes_[proba.argmax(axis=1)].astype(str)
    best = proba.max(axis=1)
    numbers = ["".join(labels[owners == index]) for index in range(len(images))]
    confidence = np.array([np.prod(best[owners == index]) for index in range(len(images))])
    return numbers, confidence


def split_digits(ink):
    """Return the digits of a line of ink, left to right, each on its own dark page.

    Parameters
    ----------
    ink : ndarray of shape (height, width)
        Ink from 0 (paper) up to 1, as :class:`DigitNormalizer` separates it.

    Returns
    -------
    digits : list of ndarray
        One float array per digit: its pieces of ink, and nothing else, on paper 0 with a
        margin around them.
    """
    labels, count = ndi.label(ink > 0, structure=np.ones((3, 3)))
    boxes = ndi.find_objects(labels)
    groups = []  # [left, right, [labels]] column spans, in order of their left edge
    for label, (_, cols) in sorted(enumerate(boxes, 1), key=lambda item: item[1][1].start):
        if groups:
            left, right, members = groups[-1]
            overlap = min(right, cols.stop) - max(left, cols.start)
            narrower = min(right - left, cols.stop - cols.start)
            if overlap >= SAME_DIGIT_OVERLAP * narrower:
                groups[-1] = [left, max(right, cols.stop), [*members, label]]
                continue
        groups.append([cols.start, cols.stop, [label]])
    return [
        _cut_out(np.where(np.isin(labels, members), ink, 0)[:, left:right])
        for left, right, members in groups
    ]


def _cut_out(ink):
    """Return ``ink`` cropped to its rows and columns of ink, with a margin of paper."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.pad(ink, max(2, round(MARGIN * ink.shape[0])))


def _split_touching(model, pieces):
    """Return ``(owner, digit)`` pieces with those that are two touching digits cut in two.

    A piece wider than tall may be two digits whose ink touches. It is tried cut at each of
    the ``CUT_CANDIDATES`` columns with the least ink in its middle half, and the cut the
    model is surest of (the product of the two halves' probabilities) is kept when that
    beats the model's probability for the whole piece by ``CUT_MARGIN``. Up to ``MAX_CUTS``
    rounds cut three or more touching digits.
    """
    for _ in range(MAX_CUTS):
        tries = {i: _cuts(digit) for i, (_, digit) in enumerate(pieces) if _is_wide(digit)}
        tries = {i: cuts for i, cuts in tries.items() if cuts}
        if not tries:
            return pieces
        candidates = [
            piece
            for i, cuts in tries.items()
            for piece in (pieces[i][1], *(half for halves in cuts for half in halves))
        ]
        sure = iter(model.predict_proba(candidates).max(axis=1))
        replaced = {}
        for i, cuts in tries.items():
            whole = next(sure)
            scores = [next(sure) * next(sure) for _ in cuts]
            if max(scores) > whole + CUT_MARGIN:
                owner = pieces[i][0]
                replaced[i] = [(owner, half) for half in cuts[int(np.argmax(scores))]]
        if not replaced:
            return pieces
        pieces = [part for i, piece in enumerate(pieces) for part in replaced.get(i, [piece])]
    return pieces


def _is_wide(digit):
    """Return whether a digit's ink is wider than tall: it may be two touching digits."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return cols[-1] - cols[0] > TOUCHING_ASPECT * (rows[-1] - rows[0])


def _cuts(digit):
    """Return pairs of pieces of ``digit``, cut at the columns with least ink mid-way."""
    cols = np.flatnonzero(digit.any(axis=0))
    left, right = cols[0], cols[-1] + 1
    start = left + (right - left) // 4
    ink = digit[:, start : right - (right - left) // 4].sum(axis=0)
    cuts = []
    for column in start + np.argsort(ink, kind="stable")[:CUT_CANDIDATES]:
        halves = digit[:, :column], digit[:, column:]
        if all(half.any() for half in halves):
            cuts.append([_cut_out(half) for half in halves])
    return cuts
