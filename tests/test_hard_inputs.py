"""Hard inputs: any shape, dtype, value or label either works or fails with a clear error.

Random layouts, dtypes, extreme values and broken labels go through both estimators. Each
case must either work correctly (``fit`` returns the estimator, predictions are labels from
``classes_``, probabilities are finite rows that sum to 1, transformed images are finite) or
raise a ValueError or TypeError whose message names the problem, from input validation before
any training: never an error from inside torch or skorch, never a NaN prediction. Predicting
on large uint8 data converts it to float32 one batch at a time.
"""

import contextlib
import math
import re
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from conftest import tiny
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal

from skdigits import ImageTransformer

# Reproducible in CI (no example database, no random seed) and a few seconds per test.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The tests that mix everything get more examples; --hypothesis-show-statistics shows how
# often their inputs work and which errors the others raise.
FUZZ_EVERYTHING = settings(FUZZ, max_examples=60)

INTEGER_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
# Numeric dtypes numpy accepts that torch cannot read as they are: a second name for uint64,
# extended precision and big-endian byte order.
ODD_DTYPES = [np.ulonglong, np.longdouble, ">f4", ">i8", ">u2"]
NUMERIC_DTYPES = [np.bool_, *INTEGER_DTYPES, *FLOAT_DTYPES, *ODD_DTYPES]

SMALLEST = {"channels": (2,), "max_epochs": 1, "batch_size": 8, "validation_fraction": 0}

# Sizes: rows to train on, sides of an image, pixels in a flat row.
TRAINING_ROWS = st.integers(2, 20)
SIDES = st.integers(1, 9)
WIDTHS = st.integers(1, 80)

# What a message must mention for a user to see what is wrong with their input.
CLEAR_MESSAGE = (
    r"NaN|infinity|feature|sample|class|label|dtype|Complex|shape|dimension|2D array|"
    r"1d array|RGBA\) channels|float|string|bytes|None|perfect square|image_shape|range"
)
# The packages whose code runs the training. Told apart by module name, not file path: a path
# like /opt/torch/.venv/.../sklearn/base.py holds "/torch/" too.
TRAINING_PACKAGES = {"torch", "skorch"}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run torch on one thread: on a shared CPU, spinning OpenMP threads slow tiny nets 20x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted(small_digits):
    """Return a classifier and a transformer fitted on 8x8 digits with pixels 0..16."""
    X, y = small_digits
    return small().fit(X, y), ImageTransformer().fit(X)


def small(**params):
    """Return the smallest classifier: one 2-channel convolution trained for one epoch."""
    return tiny(**{**SMALLEST, **params})


def assert_clear_input_error(error, match=CLEAR_MESSAGE):
    """Assert ``error`` is a ValueError or TypeError matching ``match``, raised outside torch."""
    assert isinstance(error, (ValueError, TypeError)), repr(error)
    assert re.search(match, str(error)), repr(error)
    modules, frame = [], error.__traceback__
    while frame is not None:
        modules.append(frame.tb_frame.f_globals.get("__name__", ""))
        frame = frame.tb_next
    inside = [name for name in modules if name.partition(".")[0] in TRAINING_PACKAGES]
    assert not inside, f"{error!r} was raised from inside {inside[-1]}"


@contextlib.contextmanager
def raises_input_error(match=CLEAR_MESSAGE):
    """Expect a ValueError or TypeError matching ``match``, raised before any training."""
    try:
        yield
    except Exception as error:
        assert_clear_input_error(error, match)
    else:
        pytest.fail(f"no error matching {match!r} was raised")


def cannot_work(X):
    """Return whether no estimator can take ``X``: pixels that are no numbers or beyond float32."""
    if X.dtype.kind not in "biufO":
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return True
    with np.errstate(invalid="ignore"):
        return not np.all(np.abs(values) <= np.finfo(np.float32).max)


def assert_predicts_probabilities(clf, X):
    """Assert ``clf`` gives finite probabilities summing to 1 and labels from ``classes_``."""
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_))
    assert np.isfinite(proba).all()
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def pixel_values(dtype, limit=None):
    """Return a strategy for finite pixels of ``dtype``, edges included, within +-limit if given.

    A limit of 1e38 keeps the range of any two pixels within float32, the precision the network
    computes in.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if limit is None:
            return st.integers(int(info.min), int(info.max))
        return st.integers(max(int(info.min), -int(limit)), min(int(info.max), int(limit)))
    width = min(8 * dtype.itemsize, 64)
    info = np.finfo(f"f{width // 8}")
    high = float(info.max) if limit is None else min(limit, float(info.max))
    high = float(info.dtype.type(high))  # hypothesis takes only bounds the dtype holds
    edges = [float(info.smallest_subnormal), float(info.tiny), high, -high]
    if width == 64:
        edges += [1e-300, -1e-300]
    return st.sampled_from(edges) | st.floats(-high, high, width=width)


@st.composite
def layouts(draw, rows, sides=SIDES, widths=WIDTHS):
    """Draw ``(shape, image_shape, image_shape_)``: an input layout and the shape it carries.

    Flat rows get ``image_shape=(1, -1)`` unless their width is a perfect square.
    """
    n = draw(rows)
    kind = draw(st.sampled_from(["rows", "images", "channels first", "channels last"]))
    if kind == "rows":
        width = draw(widths)
        side = math.isqrt(width)
        if side * side == width:
            return (n, width), None, (side, side)
        return (n, width), (1, -1), (1, width)
    height, width = draw(sides), draw(sides)
    if kind == "images":
        return (n, height, width), None, (height, width)
    if kind == "channels first" or height == 1:
        # (n, 1, width, 1) would be ambiguous, and read as channels first.
        return (n, 1, height, width), None, (height, width)
    return (n, height, width, 1), None, (height, width)


@st.composite
def numeric_images(draw, rows=TRAINING_ROWS, limit=1e38, **layout):
    """Draw ``(X, image_shape, image_shape_)``: images of any numeric dtype and layout."""
    shape, image_shape, expected = draw(layouts(rows, **layout))
    dtype = np.dtype(draw(st.sampled_from(NUMERIC_DTYPES)))
    X = draw(hnp.arrays(dtype, shape, elements=pixel_values(dtype, limit)))
    return X, image_shape, expected


@st.composite
def float_digits(draw, rows=TRAINING_ROWS):
    """Draw float or object arrays of 8x8 images in any layout, with pixels 0..16."""
    shape, _, _ = draw(layouts(rows, sides=st.just(8), widths=st.just(64)))
    dtype = draw(st.sampled_from([*FLOAT_DTYPES, np.longdouble, object]))
    X = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 16)))
    return X.astype(dtype)


@st.composite
def unusable_shapes(draw, sides=SIDES):
    """Draw ``(shape, message)``: a shape neither estimator can take, and its error."""
    n, height, width = draw(st.integers(1, 6)), draw(sides), draw(sides)
    wide = draw(st.integers(2, 9))
    kind = draw(st.sampled_from(["1-D", "5-D", "no rows", "no pixels", "five channels"]))
    choices = {
        "1-D": [((height * width,), r"Expected 2D array, got 1D array")],
        "5-D": [((n, 1, height, width, 1), r"5 dimensions, of shape")],
        "no rows": [
            (shape, r"0 sample")
            for shape in [(0, height * width), (0, height, width), (0, 1, height, width)]
        ],
        "no pixels": [
            ((n, 0), r"0 feature"),
            ((n, 0, width), r"0 feature|images of shape \(0, "),
            ((n, 1, height, 0), r"0 feature|images of shape \(\d+, 0\)"),
        ],
        "five channels": [
            ((n, 5, height, max(width, wide, 5)), r"1, 3 \(RGB\) or 4 \(RGBA\) channels"),
            ((n, max(height, wide, 5), width, 5), r"1, 3 \(RGB\) or 4 \(RGBA\) channels"),
        ],
    }
    return draw(st.sampled_from(choices[kind]))


# Pixel arrays no estimator can take, each with a strategy for its values and the error.
NON_NUMERIC_PIXELS = {
    "complex": (np.complex128, st.complex_numbers(max_magnitude=16), r"Complex data"),
    "complex64": (np.complex64, st.complex_numbers(max_magnitude=16, width=64), r"Complex data"),
    "str": ("U4", st.sampled_from(["1", "dark", ""]), r"bytes/strings"),
    "bytes": ("S4", st.sampled_from([b"1", b"dark"]), r"bytes/strings"),
    "words": (object, st.sampled_from(["dark", "one"]), r"could not convert string to float"),
    "None": (object, st.none(), r"NaN"),
    "huge ints": (object, st.integers(10**309, 10**400), r"too large for float64"),
    "dates": ("datetime64[s]", st.datetimes().map(np.datetime64), r"dtype datetime64.*numbers"),
    "durations": ("timedelta64[ms]", st.timedeltas().map(np.timedelta64), r"dtype timedelta64"),
}


@st.composite
def non_numeric_images(draw, shape):
    """Draw ``(X, message)``: pixels of a non-numeric kind in ``shape``, and the error."""
    dtype, values, message = NON_NUMERIC_PIXELS[draw(st.sampled_from(sorted(NON_NUMERIC_PIXELS)))]
    X = np.array(draw(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape))))
    return X.astype(dtype).reshape(shape), message


# Broken label arrays for n samples, each with the error that names the problem.
BAD_LABELS = {
    "too few": (lambda n, i: np.arange(n - 1) % 2, r"inconsistent numbers of samples"),
    "too many": (lambda n, i: np.arange(n + 1) % 2, r"inconsistent numbers of samples"),
    "2-D": (lambda n, i: np.zeros((n, 2)), r"y should be a 1d array, got .* shape \(\d+, 2\)"),
    "continuous": (lambda n, i: np.arange(n) + 0.5, r"Unknown label type: continuous"),
    "one class": (lambda n, i: np.full(n, "seven"), r"only one class: .*seven"),
    "NaN": (lambda n, i: np.where(np.arange(n) == i, np.nan, np.arange(n) % 2), r"NaN"),
    "infinity": (lambda n, i: np.where(np.arange(n) == i, np.inf, np.arange(n) % 2), "infinity"),
    "mixed types": (
        lambda n, i: np.array([*(["one"] * i), 1, *(["two"] * (n - i - 1))], dtype=object),
        r"mixes labels of different types \(number, string\)",
    ),
    "None": (
        lambda n, i: np.array([None if j == i else j % 2 for j in range(n)], dtype=object),
        r"y contains None",
    ),
    "bytes": (lambda n, i: np.array([b"zero", b"one"] * n)[:n], r"bytes"),
    "complex": (lambda n, i: np.arange(n) % 2 + 1j, r"Complex data"),
}


@st.composite
def bad_labels(draw, n):
    """Draw ``(y, message)``: a broken label array for ``n`` samples, and its error."""
    make, message = BAD_LABELS[draw(st.sampled_from(sorted(BAD_LABELS)))]
    return make(n, draw(st.integers(0, n - 1))), message


# Label sets of one type each: numbers at the int64 and uint64 edges, text, bools, floats.
LABEL_SETS = st.one_of(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=2, max_size=4, unique=True).map(np.array),
    st.lists(st.integers(2**63, 2**64 - 1), min_size=2, max_size=3, unique=True).map(
        lambda labels: np.array(labels, dtype=np.uint64)
    ),
    st.lists(st.integers(-9, 9), min_size=2, max_size=4, unique=True).map(
        lambda labels: np.array(labels, dtype=float)
    ),
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4),
        min_size=2,
        max_size=4,
        unique=True,
    ).flatmap(lambda labels: st.sampled_from([np.array(labels), np.array(labels, dtype=object)])),
    st.just(np.array([False, True])),
)


@FUZZ
@given(case=numeric_images())
def test_any_numeric_dtype_layout_and_value_range_trains_and_predicts(case):
    X, image_shape, expected_shape = case
    y = np.arange(len(X)) % 2
    clf = small(image_shape=image_shape)
    assert clf.fit(X, y) is clf
    assert clf.image_shape_ == expected_shape
    assert_predicts_probabilities(clf, X)


@FUZZ
@given(case=numeric_images(rows=st.integers(1, 20)))
def test_transformer_maps_any_numeric_images_onto_0_1(case):
    X, image_shape, expected_shape = case
    transformer = ImageTransformer(image_shape=image_shape)
    assert transformer.fit(X) is transformer
    images = transformer.transform(X)
    assert images.shape == (len(X), 1, *expected_shape)
    assert images.dtype == np.float32
    assert np.all((images >= 0) & (images <= 1))


@FUZZ
@given(
    case=numeric_images(rows=st.integers(1, 20), limit=1000, sides=st.just(8), widths=st.just(64))
)
def test_predict_and_transform_take_any_numeric_dtype_and_layout_of_the_fitted_size(fitted, case):
    X, _, _ = case
    clf, transformer = fitted
    assert_predicts_probabilities(clf, X)
    images = transformer.transform(X)
    assert images.shape == (len(X), 1, 8, 8)
    assert np.isfinite(images).all()


@FUZZ
@given(X=float_digits(), bad=st.sampled_from([np.nan, np.inf, -np.inf]), data=st.data())
def test_nan_or_infinity_anywhere_is_rejected_by_every_method(fitted, X, bad, data):
    X.flat[data.draw(st.integers(0, X.size - 1))] = bad
    message = "NaN" if np.isnan(bad) else "infinity"
    y = np.arange(len(X)) % 2
    clf, transformer = fitted
    for method, args in [
        (small().fit, (X, y)),
        (ImageTransformer().fit, (X,)),
        (clf.predict_proba, (X,)),
        (clf.predict, (X,)),
        (transformer.transform, (X,)),
    ]:
        with raises_input_error(message):
            method(*args)


@FUZZ
@given(case=unusable_shapes(), dtype=st.sampled_from([np.uint8, np.float64]))
def test_unusable_shapes_are_rejected_by_fit_naming_the_shape(case, dtype):
    shape, message = case
    X = np.ones(shape, dtype)
    with raises_input_error(message):
        small().fit(X, np.arange(len(X)) % 2)
    with raises_input_error(message):
        ImageTransformer().fit(X)


@FUZZ
@given(case=unusable_shapes(sides=st.just(8)))
def test_unusable_shapes_are_rejected_by_predict_and_transform(fitted, case):
    shape, message = case
    clf, transformer = fitted
    for method in (clf.predict_proba, clf.predict, transformer.transform):
        with raises_input_error(message):
            method(np.ones(shape))


@FUZZ
@given(data=st.data(), shape=st.sampled_from([(6, 64), (6, 8, 8), (6, 1, 8, 8), (6, 8, 8, 1)]))
def test_non_numeric_pixels_are_rejected_naming_their_type(fitted, data, shape):
    X, message = data.draw(non_numeric_images(shape))
    clf, transformer = fitted
    for method, args in [
        (small().fit, (X, np.arange(6) % 2)),
        (ImageTransformer().fit, (X,)),
        (clf.predict_proba, (X,)),
        (transformer.transform, (X,)),
    ]:
        with raises_input_error(message):
            method(*args)


@FUZZ
@given(X=float_digits(rows=st.integers(1, 12)))
def test_object_arrays_of_numbers_predict_like_float64(fitted, X):
    clf, transformer = fitted
    as_objects = X.astype(np.float64).astype(object)
    assert_array_equal(clf.predict_proba(as_objects), clf.predict_proba(X.astype(np.float64)))
    assert_array_equal(
        transformer.transform(as_objects), transformer.transform(X.astype(np.float64))
    )


@FUZZ
@given(
    darkest=st.floats(0, 1e300),
    brightest=st.floats(0, 1e300),
    dtype=st.sampled_from([np.float64, np.longdouble, object]),
)
def test_fit_rejects_pixel_ranges_beyond_float32(darkest, brightest, dtype):
    assume(brightest + darkest > float(np.finfo(np.float32).max))
    X = np.zeros((4, 9), dtype)
    X[0, 0], X[1, 8] = -darkest, brightest
    with raises_input_error(r"do not fit in float32.*rescale X"):
        small().fit(X, [0, 1, 0, 1])
    with raises_input_error(r"do not fit in float32.*rescale X"):
        ImageTransformer().fit(X)


@FUZZ
@given(
    X=float_digits(rows=st.integers(1, 6)),
    far=st.floats(1.7e7, 1e300) | st.sampled_from([2**63 - 1, 2**64 - 1]),
    sign=st.sampled_from([1, -1]),
    data=st.data(),
)
def test_predict_rejects_pixels_far_outside_the_learned_range_instead_of_returning_nan(
    fitted, X, far, sign, data
):
    # Scaled by the range 0..16 learned in fit, these pixels exceed a million.
    X = X.astype(object)
    X.flat[data.draw(st.integers(0, X.size - 1))] = sign * far
    X = np.array(X.tolist())
    clf, transformer = fitted
    for method in (clf.predict_proba, clf.predict, transformer.transform):
        with raises_input_error(r"far outside the range 0 to 16 that \w+ learned in fit"):
            method(X)


@FUZZ
@given(n=st.integers(2, 20), data=st.data())
def test_broken_labels_are_rejected_before_training(n, data):
    y, message = data.draw(bad_labels(n))
    X = np.tile(np.arange(4.0), (n, 1))
    with raises_input_error(message), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Complex labels warn before they are rejected.
        small().fit(X, y)


@FUZZ
@given(labels=LABEL_SETS, n=st.integers(4, 20))
def test_labels_of_any_single_type_are_learned_and_predicted_back(labels, n):
    y = labels[np.arange(n) % len(labels)]
    X = np.arange(n * 4.0).reshape(n, 4)
    clf = small().fit(X, y)
    assert_array_equal(clf.classes_, np.unique(y))
    predicted = clf.predict(X)
    assert predicted.dtype == y.dtype
    assert set(predicted.tolist()) <= set(y.tolist())


# Everything at once: values that break, dtypes that don't fit, shapes that are wrong, labels
# that are wrong, in any combination; the property still has to hold.
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 1e300, -1e300, 1e38, 1e-300, 5e-324, 2**63 - 1, None]


def one_in(draw, times):
    """Draw whether a one-in-``times`` chance comes up."""
    return draw(st.integers(1, times)) == 1


@st.composite
def any_input(draw, rows=TRAINING_ROWS, sides=SIDES, widths=WIDTHS):
    """Draw ``X``: a valid, misshapen, non-numeric or poisoned array of pixels.

    Each kind of trouble comes one time in four, so that about a third of the inputs are
    fine and the mixes of trouble are tried too.
    """
    if one_in(draw, 4):
        shape, _ = draw(unusable_shapes(sides=sides))
    else:
        shape, _, _ = draw(layouts(rows, sides=sides, widths=widths))
    if one_in(draw, 4):
        X, _ = draw(non_numeric_images(shape))
    else:
        dtype = np.dtype(draw(st.sampled_from(NUMERIC_DTYPES)))
        limit = draw(st.sampled_from([None, 1e38, 255]))
        X = draw(hnp.arrays(dtype, shape, elements=pixel_values(dtype, limit)))
    if X.size and one_in(draw, 4):
        X = X.astype(object)
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from(SPECIAL_VALUES))
        if draw(st.booleans()):
            # As a nested list, which numpy turns into whatever dtype fits all values.
            X = np.array(X.tolist())
    return X


@FUZZ_EVERYTHING
@given(
    X=any_input(rows=st.integers(0, 20)),
    image_shape=st.sampled_from([None, (1, -1)]),
    data=st.data(),
)
def test_fit_on_any_input_works_or_fails_with_a_clear_error(X, image_shape, data):
    n = len(X)
    y = data.draw(bad_labels(n))[0] if n and one_in(data.draw, 4) else np.arange(n) % 2
    clf = small(image_shape=image_shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
    except Exception as error:
        event(f"fit raised {type(error).__name__}")
        assert_clear_input_error(error)
    else:
        event("fit worked")
        assert not cannot_work(X)
        assert_predicts_probabilities(clf, X)


@FUZZ_EVERYTHING
@given(X=any_input(rows=st.integers(0, 12), sides=st.just(8), widths=st.just(64)))
def test_predict_and_transform_on_any_input_work_or_fail_with_a_clear_error(fitted, X):
    clf, transformer = fitted
    for method in (clf.predict_proba, clf.predict, transformer.transform):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = method(X)
        except Exception as error:
            event(f"{method.__name__} raised {type(error).__name__}")
            assert_clear_input_error(error)
        else:
            event(f"{method.__name__} worked")
            assert not cannot_work(X)
            assert len(out) == len(X)
            assert out.dtype.kind != "f" or np.isfinite(out).all()


# The nastiest cases the properties above found, one behaviour each.


@pytest.mark.parametrize("shape", [(0, 8, 8), (0, 1, 8, 8), (0, 8, 8, 1)])
def test_image_arrays_without_rows_report_zero_samples(shape):
    # numpy cannot reshape an empty array to (0, -1); this used to be its error.
    with raises_input_error(r"Found array with 0 sample\(s\) \(shape=\(0, 64\)\)"):
        small().fit(np.zeros(shape), np.zeros(0))


@pytest.mark.parametrize("dtype", [np.ulonglong, np.longdouble, ">f8", ">i4"])
def test_dtypes_torch_cannot_read_train_like_their_float64_values(small_digits, dtype):
    # torch.from_numpy refused these inside the training loop: ulonglong is the second numpy
    # name for uint64, torch has no longdouble, and reads only native byte order.
    X, y = small_digits
    expected = small().fit(X, y).predict_proba(X)
    clf = small().fit(X.astype(dtype), y)
    assert_array_equal(clf.predict_proba(X.astype(dtype)), expected)
    assert_array_equal(
        ImageTransformer().fit_transform(X.astype(dtype)), ImageTransformer().fit_transform(X)
    )


@pytest.mark.parametrize("dtype", ["datetime64[s]", "timedelta64[ms]"])
def test_dates_and_durations_are_rejected_with_a_type_error(small_digits, dtype):
    X, y = small_digits
    with raises_input_error(rf"X has dtype {re.escape(dtype)}; pixels must be numbers"):
        small().fit(X.astype(dtype), y)


def test_python_ints_beyond_float64_raise_a_value_error_not_an_overflow_error():
    X = np.full((4, 4), 10**400, dtype=object)
    with raises_input_error(r"X holds a number too large for float64.*rescale X"):
        small().fit(X, [0, 1, 0, 1])


def test_fit_on_pixels_beyond_float32_raises_without_overflow_warnings():
    X = np.array([[0.0, 1e300], [1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with raises_input_error(r"pixel values from 0.0 to 1e\+300 do not fit in float32"):
            ImageTransformer(image_shape=(1, -1)).fit(X)


@pytest.mark.parametrize("value", [1e300, 3.4e38, -3.4e38, 2**63 - 1])
def test_predicting_pixels_on_another_scale_raises_instead_of_returning_nan(value):
    # A model fitted on 0..1 used to give NaN probabilities for these pixels.
    rng = np.random.RandomState(0)
    clf = small(image_shape=(1, -1)).fit(rng.uniform(size=(10, 5)), np.arange(10) % 2)
    with raises_input_error(r"far outside the range .* learned in fit.*Rescale X"):
        clf.predict_proba(np.full((3, 5), value))


def test_model_fitted_on_subnormal_pixels_rejects_ordinary_ones():
    # The learned span, 1.4e-45, turns a pixel of 1 into inf and the prediction into NaN.
    X = np.zeros((10, 5), np.float32)
    X[::2, 1] = np.finfo(np.float32).smallest_subnormal
    clf = small(image_shape=(1, -1)).fit(X, np.arange(10) % 2)
    assert_predicts_probabilities(clf, X)
    with raises_input_error(r"far outside the range 0 to 1.4013e-45"):
        clf.predict(np.ones((1, 5)))


def test_transform_rejects_pixels_that_would_scale_to_infinity():
    transformer = ImageTransformer().fit(np.array([[0.0, 1.0, 2.0, 3.0]]))
    with raises_input_error(r"far outside the range 0 to 3 that ImageTransformer learned"):
        transformer.transform(np.array([[0.0, 1.0, 2.0, 1e300]]))


def test_constant_images_train_and_predict_the_same_probabilities_for_every_image():
    X = np.full((12, 16), 7, np.uint8)
    clf = small().fit(X, np.arange(12) % 3)
    proba = clf.predict_proba(X)
    assert_predicts_probabilities(clf, X)
    assert_array_equal(proba, np.tile(proba[0], (12, 1)))
    assert_array_equal(ImageTransformer().fit_transform(X), np.zeros((12, 1, 4, 4), np.float32))


@pytest.mark.parametrize(
    "y, message",
    [
        (np.array([1, "one", 2, "two"], dtype=object), r"mixes labels of different types"),
        (np.array([0, None, 1, 0], dtype=object), r"y contains None"),
    ],
    ids=["ints-and-strings", "None"],
)
def test_labels_mixing_types_or_missing_name_the_problem(y, message):
    # scikit-learn's own message for both is "Unknown label type: unknown".
    with raises_input_error(message):
        small().fit(np.tile(np.arange(4.0), (4, 1)), y)


def test_one_pixel_images_train_when_the_last_batch_holds_one_image():
    X = np.arange(9.0).reshape(9, 1)
    clf = small(image_shape=(1, 1)).fit(X, np.arange(9) % 2)
    assert_predicts_probabilities(clf, X)


def test_predict_proba_on_a_large_uint8_memmap_converts_one_batch_at_a_time(
    small_digits, tmp_path
):
    X_small, y = small_digits
    clf = small().fit(X_small.astype(np.uint8), y < 5)
    n_rows = 200_000
    writable = np.memmap(tmp_path / "images.u8", np.uint8, "w+", shape=(n_rows, 64))
    writable[:] = np.resize(X_small.astype(np.uint8), (n_rows, 64))
    writable.flush()
    del writable
    X = np.memmap(tmp_path / "images.u8", np.uint8, "r", shape=(n_rows, 64))
    batch_rows = []
    hook = clf.net_.module_.register_forward_pre_hook(
        lambda module, args: batch_rows.append(len(args[0]))
    )
    tracemalloc.start()
    try:
        proba = clf.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        hook.remove()
    # numpy's allocations are traced, torch's are not: the batch sizes the network sees show
    # that torch never holds more than a batch either.
    float32_copy = X.size * 4
    assert peak - proba.nbytes < 0.25 * float32_copy
    assert sum(batch_rows) == n_rows
    assert max(batch_rows) <= max(clf.batch_size, 1024)
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
