"""ImageTransformer, and the transformer and classifier together in scikit-learn tools."""

import numpy as np
import pytest
from conftest import tiny
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

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
