"""ImageTransformer, and the transformer and classifier together in scikit-learn tools."""

import numpy as np
import pandas as pd
import pytest
from conftest import tiny
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import clone, config_context
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import (
    check_get_feature_names_out_error,
    check_set_output_transform,
)

from skdigits import ImageTransformer


def test_transform_returns_float32_single_channel_images_scaled_to_0_1(digits):
    X, _ = digits
    images = ImageTransformer().fit_transform(X)
    assert images.shape == (len(X), 1, 8, 8)
    assert images.dtype == np.float32
    assert images.min() == 0 and images.max() == 1
    assert_array_equal(images.reshape(len(X), 64), (X / 16).astype(np.float32))


@pytest.mark.parametrize(
    "X", [np.array([[0, 255, 128, 64]], np.uint8), np.array([[-1.0, 1.0, 0.0, 0.5]])]
)
def test_learned_range_maps_training_pixels_onto_0_1(X):
    images = ImageTransformer().fit_transform(X)
    assert images.min() == 0 and images.max() == 1
    assert images.shape == (1, 1, 2, 2)


def test_transform_uses_the_range_learned_in_fit():
    transformer = ImageTransformer().fit(np.array([[0, 100, 50, 25]]))
    assert_array_equal(transformer.transform(np.array([[200, 0, 0, 0]])).ravel(), [2, 0, 0, 0])


def test_transform_rejects_images_of_another_size(digits):
    X, _ = digits
    transformer = ImageTransformer().fit(X)
    with pytest.raises(ValueError, match=r"shape \(28, 28\).*shape \(8, 8\)"):
        transformer.transform(np.zeros((1, 28, 28)))


def test_transform_before_fit_raises_not_fitted_error(digits):
    with pytest.raises(NotFittedError):
        ImageTransformer().transform(digits[0])


def _pixel_frame(X, width):
    """Return rows of pixels as a DataFrame with one column per pixel, named r{row}c{col}."""
    height = X.shape[1] // width
    return pd.DataFrame(X, columns=[f"r{r}c{c}" for r in range(height) for c in range(width)])


# get_feature_names_out


def test_feature_names_out_are_the_column_names_of_the_dataframe_seen_in_fit(digits):
    frame = _pixel_frame(digits[0], width=8)
    transformer = ImageTransformer().fit(frame)
    assert_array_equal(transformer.get_feature_names_out(), frame.columns)
    assert transformer.get_feature_names_out().dtype == object


def test_feature_names_out_are_x0_to_xn_for_an_array(digits):
    transformer = ImageTransformer().fit(digits[0])
    assert_array_equal(transformer.get_feature_names_out(), [f"x{i}" for i in range(64)])


def test_feature_names_out_name_the_pixels_of_flattened_images_in_order():
    X = np.arange(12.0).reshape(2, 6)
    frame = _pixel_frame(X, width=3)
    transformer = ImageTransformer(image_shape=(2, 3)).fit(frame)
    images = transformer.transform(frame)
    names = transformer.get_feature_names_out()
    low, span = transformer.pixel_range_
    for row in range(2):
        for col in range(3):
            expected = (frame[names[row * 3 + col]] - low) / span
            assert_allclose(images[:, 0, row, col], expected)
            assert names[row * 3 + col] == f"r{row}c{col}"


def test_feature_names_out_accept_the_names_seen_in_fit_as_input_features(digits):
    frame = _pixel_frame(digits[0], width=8)
    transformer = ImageTransformer().fit(frame)
    assert_array_equal(transformer.get_feature_names_out(list(frame.columns)), frame.columns)


def test_feature_names_out_name_unnamed_columns_by_the_given_input_features(digits):
    transformer = ImageTransformer().fit(digits[0])
    names = [f"pixel{i}" for i in range(64)]
    assert_array_equal(transformer.get_feature_names_out(names), names)


def test_feature_names_out_reject_input_features_other_than_the_names_seen_in_fit(digits):
    transformer = ImageTransformer().fit(_pixel_frame(digits[0], width=8))
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        transformer.get_feature_names_out([f"pixel{i}" for i in range(64)])


def test_feature_names_out_reject_input_features_of_another_length(digits):
    transformer = ImageTransformer().fit(digits[0])
    with pytest.raises(ValueError, match="input_features should have length equal to"):
        transformer.get_feature_names_out([f"pixel{i}" for i in range(63)])


def test_feature_names_out_before_fit_raises_not_fitted_error():
    with pytest.raises(NotFittedError):
        ImageTransformer().get_feature_names_out()


# set_output: 4-D images cannot be a DataFrame


@pytest.mark.parametrize("container", ["pandas", "polars"])
def test_set_output_to_a_dataframe_raises_naming_the_4d_images_and_the_way_out(container):
    with pytest.raises(ValueError, match=r"4-D images.*DataFrame cannot hold.*reshape"):
        ImageTransformer().set_output(transform=container)


@pytest.mark.parametrize("method", ["transform", "fit_transform"])
def test_global_pandas_output_raises_naming_set_output_default(digits, method):
    transformer = ImageTransformer().fit(digits[0])
    expected = r"4-D images.*set_output\(transform='default'\)"
    with config_context(transform_output="pandas"), pytest.raises(ValueError, match=expected):
        getattr(transformer, method)(digits[0])


def test_set_output_default_returns_images_under_global_pandas_output(digits):
    transformer = ImageTransformer().set_output(transform="default")
    with config_context(transform_output="pandas"):
        images = transformer.fit_transform(digits[0])
    assert isinstance(images, np.ndarray)
    assert images.shape == (len(digits[0]), 1, 8, 8)


def test_set_output_none_leaves_the_output_configuration_unchanged(digits):
    transformer = ImageTransformer().fit(digits[0])
    assert transformer.set_output(transform=None) is transformer
    with config_context(transform_output="pandas"), pytest.raises(ValueError, match="4-D"):
        transformer.transform(digits[0])


def test_clone_keeps_set_output_default(digits):
    transformer = clone(ImageTransformer().set_output(transform="default"))
    with config_context(transform_output="pandas"):
        assert isinstance(transformer.fit_transform(digits[0]), np.ndarray)


def test_pipeline_fits_under_global_pandas_output_once_the_transformer_keeps_arrays(
    small_digits,
):
    X, y = small_digits
    pipeline = make_pipeline(ImageTransformer().set_output(transform="default"), tiny())
    with config_context(transform_output="pandas"):
        assert pipeline.fit(X, y).score(X, y) > 0


@pytest.mark.parametrize("check", [check_set_output_transform, check_get_feature_names_out_error])
def test_passes_the_scikit_learn_output_checks_that_allow_images(check):
    # scikit-learn's other output checks (check_transformer_get_feature_names_out,
    # check_set_output_transform_pandas, ...) assume 2-D output: the number of names must be
    # the output's shape[1], and the output must fit in a DataFrame.
    check("ImageTransformer", ImageTransformer(image_shape=(1, -1)))


# inverse_transform


def test_inverse_transform_recovers_uint8_pixels_from_0_to_255():
    X = np.random.default_rng(0).integers(0, 256, size=(50, 64), dtype=np.uint8)
    X[0, :2] = 0, 255
    transformer = ImageTransformer().fit(X)
    rows = transformer.inverse_transform(transformer.transform(X))
    assert_allclose(rows, X, atol=1e-4)
    assert_array_equal(np.rint(rows).astype(np.uint8), X)


def test_inverse_transform_recovers_float_pixels_from_0_to_16(digits):
    X = digits[0]
    transformer = ImageTransformer().fit(X)
    assert_allclose(transformer.inverse_transform(transformer.transform(X)), X, atol=1e-5)


@pytest.mark.parametrize(
    "layout",
    [lambda images: images, lambda images: images[:, 0], lambda images: images.reshape(3, 64)],
    ids=["(n, 1, h, w)", "(n, h, w)", "(n, h*w)"],
)
def test_inverse_transform_returns_one_row_of_pixels_per_image(digits, layout):
    X = digits[0][:3]
    transformer = ImageTransformer().fit(X)
    rows = transformer.inverse_transform(layout(transformer.transform(X)))
    assert rows.shape == (3, 64)
    assert_allclose(rows, X, atol=1e-5)


@pytest.mark.parametrize(
    "dtype, expected", [(np.float32, np.float32), (np.float64, np.float64), (int, np.float64)]
)
def test_inverse_transform_keeps_float32_and_float64_and_makes_integers_float64(
    digits, dtype, expected
):
    transformer = ImageTransformer().fit(digits[0])
    assert transformer.inverse_transform(np.zeros((2, 1, 8, 8), dtype)).dtype == expected


def test_inverse_transform_rejects_images_of_another_size_naming_both_shapes(digits):
    transformer = ImageTransformer().fit(digits[0])
    with pytest.raises(ValueError, match=r"shape \(28, 28\).*shape \(8, 8\)"):
        transformer.inverse_transform(np.zeros((2, 1, 28, 28), np.float32))


def test_inverse_transform_rejects_rows_of_another_length_naming_both(digits):
    transformer = ImageTransformer().fit(digits[0])
    with pytest.raises(ValueError, match=r"10 features.*expecting 64.*shape \(8, 8\)"):
        transformer.inverse_transform(np.zeros((2, 10)))


def test_inverse_transform_rejects_images_with_other_channels_naming_them(digits):
    transformer = ImageTransformer().fit(digits[0])
    with pytest.raises(ValueError, match=r"3 channel\(s\).*1 channel\(s\), shape \(8, 8\)"):
        transformer.inverse_transform(np.zeros((2, 3, 8, 8)))


def test_inverse_transform_before_fit_raises_not_fitted_error():
    with pytest.raises(NotFittedError):
        ImageTransformer().inverse_transform(np.zeros((1, 1, 8, 8)))


def test_pipeline_predicts_exactly_what_the_classifier_alone_does(small_digits):
    X, y = small_digits
    alone = tiny().fit(X, y)
    pipeline = make_pipeline(ImageTransformer(), tiny()).fit(X, y)
    assert pipeline[-1].image_shape_ == (8, 8)
    assert_array_equal(pipeline.predict_proba(X), alone.predict_proba(X))


def test_grid_search_tunes_the_pipeline(small_digits):
    X, y = small_digits
    pipeline = make_pipeline(
        ImageTransformer(), tiny(validation_fraction=0, batch_size=16, max_epochs=5)
    )
    grid = {"cnndigitclassifier__lr": [1e-4, 3e-2]}
    search = GridSearchCV(pipeline, grid, cv=3).fit(X, y)
    assert search.best_params_ == {"cnndigitclassifier__lr": 3e-2}
    assert search.cv_results_["mean_test_score"].max() > 0.4
    assert search.score(X, y) > 0.4


def test_cross_val_score_scores_every_fold_of_the_digits(digits):
    X, y = digits
    scores = cross_val_score(tiny(channels=(8, 16), batch_size=32, max_epochs=8), X, y, cv=5)
    assert scores.shape == (5,)
    assert scores.min() > 0.8
