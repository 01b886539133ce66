"""read_numbers and split_digits: numbers written on one line."""

from pathlib import Path

import numpy as np
import pytest
from skimage.transform import resize

import skdigits
from skdigits._normalizer import read_ink
from skdigits._numbers import split_digits


def test_pieces_that_overlap_horizontally_are_one_digit():
    ink = np.zeros((30, 60))
    ink[2:5, 5:15] = 1  # the bar of a 5 ...
    ink[8:25, 4:12] = 1  # ... and its body, apart from the bar but below it
    ink[5:25, 30:33] = 1  # a 1, further right

    digits = split_digits(ink)

    assert len(digits) == 2
    assert digits[0].sum() == ink[:, :20].sum()
    assert digits[1].sum() == ink[:, 20:].sum()


def test_digits_come_left_to_right_each_with_a_margin_of_paper():
    ink = np.zeros((30, 60))
    ink[5:25, 40:43] = 1
    ink[5:25, 10:20] = 0.5

    left, right = split_digits(ink)

    assert left.max() == 0.5 and right.max() == 1
    assert left[0].sum() == left[:, 0].sum() == 0


def test_read_numbers_reads_a_number_of_bundled_digits(digits):
    X, y = digits
    model = skdigits.load_pretrained()
    chosen = [int(np.flatnonzero(y == d)[0]) for d in (3, 0, 7)]
    line = np.concatenate([np.pad(X[i].reshape(8, 8), 4) for i in chosen], axis=1)
    page = 255 - np.kron(line, np.ones((6, 6))) * 12  # dark ink on light paper

    numbers, confidence = skdigits.read_numbers(model, [page])

    assert numbers == ["307"]
    assert 0 < confidence[0] <= 1


def test_read_numbers_needs_a_pipeline_with_a_normalizer(digits):
    from conftest import tiny

    X, y = digits

    with pytest.raises(TypeError, match="DigitNormalizer"):
        skdigits.read_numbers(tiny(max_epochs=1).fit(X[:100], y[:100]), [X[0].reshape(8, 8)])


SCANS = Path(__file__).parent / "data" / "scans"


def ink_of(name, height=50):
    """Return the ink of a test scan, cropped and scaled to ``height`` pixels."""
    ink = read_ink([SCANS / name], 0, "auto", None).ink
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return resize(ink, (height, round(ink.shape[1] * height / ink.shape[0])), order=1)


def touching(left, right):
    """Return a page (light ink on black) of two test scans' digits whose ink touches."""
    a, b = ink_of(left), ink_of(right)
    width = a.shape[1] + b.shape[1] - 3  # three columns of overlap
    line = np.zeros((50, width))
    line[:, : a.shape[1]] = a
    line[:, width - b.shape[1] :] = np.maximum(line[:, width - b.shape[1] :], b)
    return np.pad(line, 15)


@pytest.mark.parametrize(
    ("left", "right"),
    [("digit2_6010.png", "digit5_7541.jpg"), ("digit4_670.png", "digit6_6031.png")],
)
def test_touching_digits_are_cut_apart(left, right):
    page = touching(left, right)

    pieces = split_digits(read_ink([page], 0, "auto", None).ink)
    numbers, _ = skdigits.read_numbers(skdigits.load_pretrained(), [page])

    assert len(pieces) == 1  # one connected piece of ink ...
    assert numbers == [left[5] + right[5]]  # ... read as two digits


def test_cut_touching_false_reads_each_piece_as_one_digit():
    page = touching("digit2_6010.png", "digit5_7541.jpg")

    numbers, _ = skdigits.read_numbers(skdigits.load_pretrained(), [page], cut_touching=False)

    assert len(numbers[0]) == 1
