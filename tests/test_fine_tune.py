"""skdigits.fine_tune and FineTunedClassifier: a fitted model trained further on new images."""

import numpy as np
import pytest
import torch
from conftest import tiny
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_estimators_unfitted,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

import skdigits
from skdigits import DigitNormalizer, FineTunedClassifier, fine_tune


@pytest.fixture(scope="module")
def base(small_digits):
    X, y = small_digits
    return tiny(max_epochs=4).fit(X, y)


def weights(clf):
    """Return a copy of every network's parameters and buffers."""
    return [v.detach().clone() for v in clf.net_.module_.state_dict().values()]


def test_returns_a_tuned_copy_and_leaves_the_model_as_it_is(base, digits):
    X, y = digits
    before = weights(base)

    tuned = fine_tune(base, X[300:600], y[300:600], max_epochs=2)

    assert tuned is not base
    assert tuned.net_ is not base.net_
    assert not base.warm_start
    assert all(torch.equal(a, b) for a, b in zip(before, weights(base), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(before, weights(tuned), strict=True))
    assert tuned.warm_start
    assert tuned.lr == 1e-3
    assert (tuned.max_epochs, tuned.patience, tuned.augment) == (2, "auto", "auto")
    assert tuned.n_iter_ == 2


def test_starts_from_the_model_weights(base, digits):
    X, y = digits

    # At this rate the weights barely move (batch norm's statistics do, a little): the copy
    # predicts mostly what the model predicts. New random weights trained the same way are
    # near chance.
    tuned = fine_tune(base, X[300:600], y[300:600], max_epochs=1, lr=1e-12)
    fresh = tiny(max_epochs=1, lr=1e-12).fit(X[300:600], y[300:600])

    assert np.mean(tuned.predict(X[600:]) == base.predict(X[600:])) >= 0.85
    assert np.mean(fresh.predict(X[600:]) == base.predict(X[600:])) < 0.5


def test_without_a_validation_split_trains_on_every_image_and_keeps_the_calibration(base, digits):
    X, y = digits

    held_out = fine_tune(base, X[300:500], y[300:500], max_epochs=2)
    every = fine_tune(base, X[300:500], y[300:500], max_epochs=2, validation_fraction=0)
    other_classes = fine_tune(
        base, X[300:500], y[300:500] % 2, max_epochs=1, validation_fraction=0
    )
    tuner = FineTunedClassifier(base, max_epochs=2, validation_fraction=0, random_state=0)

    # By default the model's own split (a tenth) stops early and recalibrates.
    batches = held_out.history_[-1]["batches"]
    assert sum(b.get("train_batch_size", 0) for b in batches) == 180
    assert held_out.temperature_ not in (1, base.temperature_)
    batches = every.history_[-1]["batches"]
    assert sum(b.get("train_batch_size", 0) for b in batches) == 200
    assert sum(b.get("valid_batch_size", 0) for b in batches) == 0
    assert base.temperature_ != 1 and every.temperature_ == base.temperature_
    # A new output layer starts uncalibrated.
    assert other_classes.temperature_ == 1
    assert tuner.fit(X[300:500], y[300:500]).model_.validation_fraction == 0
    assert tuner.model_.temperature_ == base.temperature_


def test_params_replace_the_fine_tuning_ones(base, digits):
    X, y = digits

    tuned = fine_tune(base, X[300:500], y[300:500], lr=3e-4, max_epochs=1, random_state=7)

    assert (tuned.lr, tuned.max_epochs, tuned.random_state) == (3e-4, 1, 7)
    with pytest.raises(ValueError, match="channels"):
        fine_tune(base, X[300:500], y[300:500], channels=(8, 16), max_epochs=1)
    with pytest.raises(ValueError, match="warm_start"):
        fine_tune(base, X[300:500], y[300:500], warm_start=False)


def test_a_pipeline_normalises_the_new_images_as_fitted(small_digits, digits):
    X, y = small_digits
    images = X.reshape(-1, 8, 8)
    model = make_pipeline(DigitNormalizer(image_shape=(16, 16)), tiny(max_epochs=2))
    model.fit(images, y)
    new = digits[0][300:500].reshape(-1, 8, 8)

    tuned = fine_tune(model, new, digits[1][300:500], max_epochs=1)

    assert tuned[0] is not model[0]
    assert tuned[0].get_params() == model[0].get_params()
    assert tuned[-1].warm_start and not model[-1].warm_start
    assert tuned[-1].image_shape_ == (16, 16)
    assert tuned.predict(new).shape == (200,)


def test_refuses_labels_or_weights_of_another_length_before_reading_files(base, digits):
    X, y = digits
    normalizer = DigitNormalizer(image_shape=(8, 8)).fit(X[:50].reshape(-1, 8, 8))
    missing = ["no/such/file.png"] * 100  # reading any would raise FileNotFoundError

    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fine_tune(make_pipeline(normalizer, base), missing, y[:99])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fine_tune(base, X[300:400], y[300:400], sample_weight=np.ones(7), max_epochs=1)


def test_refuses_what_it_cannot_fine_tune(small_digits):
    X, y = small_digits

    with pytest.raises(TypeError, match="LogisticRegression"):
        fine_tune(LogisticRegression().fit(X, y), X, y)
    with pytest.raises(TypeError, match="LogisticRegression"):
        fine_tune(make_pipeline(LogisticRegression()).fit(X, y), X, y)
    with pytest.raises(NotFittedError):
        fine_tune(tiny(), X, y)


def test_stops_early_on_validation_images_given(small_digits, digits):
    X, y = digits
    images = X.reshape(-1, 8, 8)
    model = make_pipeline(DigitNormalizer(image_shape=(16, 16)), tiny(max_epochs=2))
    model.fit(small_digits[0].reshape(-1, 8, 8), small_digits[1])

    tuned = fine_tune(
        model, images[300:500], y[300:500], X_val=images[500:560], y_val=y[500:560], max_epochs=2
    )

    # Every image given trains (none is held out), and the 60 given are the validation set.
    batches = tuned[-1].history_[-1]["batches"]
    assert sum(b.get("train_batch_size", 0) for b in batches) == 200
    assert sum(b.get("valid_batch_size", 0) for b in batches) == 60
    with pytest.raises(ValueError, match="together"):
        fine_tune(model, images[300:500], y[300:500], X_val=images[500:560])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fine_tune(model, images[300:500], y[300:500], X_val=images[500:560], y_val=y[:3])


# FineTunedClassifier: fine_tune as an estimator that cross-validation and searches can clone.


def test_the_estimator_fits_what_fine_tune_returns(base, digits):
    X, y = digits
    before = weights(base)

    tuner = FineTunedClassifier(base, max_epochs=2, random_state=0, device="cpu")
    params = tuner.get_params(deep=False)
    tuner.fit(X[300:500], y[300:500])
    tuned = fine_tune(base, X[300:500], y[300:500], max_epochs=2, random_state=0, device="cpu")

    assert tuner.model_ is not base
    assert tuner.get_params(deep=False) == params
    assert all(torch.equal(a, b) for a, b in zip(before, weights(base), strict=True))
    np.testing.assert_array_equal(tuner.classes_, base.classes_)
    np.testing.assert_array_equal(tuner.predict_proba(X[600:]), tuned.predict_proba(X[600:]))
    np.testing.assert_array_equal(tuner.predict(X[600:]), tuned.predict(X[600:]))
    np.testing.assert_allclose(
        tuner.predict_log_proba(X[600:]), np.log(tuner.predict_proba(X[600:])), atol=1e-5
    )
    assert tuner.score(X[600:], y[600:]) == np.mean(tuned.predict(X[600:]) == y[600:])
    assert (tuner.model_.lr, tuner.model_.max_epochs, tuner.model_.n_iter_) == (1e-3, 2, 2)


def test_cross_validation_and_searches_fine_tune_a_frozen_model_on_each_fold(base, digits):
    X, y = digits
    before = weights(base)
    tuner = FineTunedClassifier(FrozenEstimator(base), max_epochs=1, random_state=0)

    scores = cross_val_score(tuner, X[300:450], y[300:450], cv=3)
    search = GridSearchCV(tuner, {"lr": [1e-12, 1e-3]}, cv=2).fit(X[300:450], y[300:450])

    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    assert search.cv_results_["params"] == [{"lr": 1e-12}, {"lr": 1e-3}]
    assert search.best_estimator_.model_.lr == search.best_params_["lr"]
    assert search.best_estimator_.model_.warm_start
    assert all(torch.equal(a, b) for a, b in zip(before, weights(base), strict=True))


def test_a_cloned_model_in_memory_is_refused_with_the_way_out(base, digits):
    X, y = digits
    tuner = clone(FineTunedClassifier(base))  # clone() leaves an unfitted copy of base

    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        tuner.fit(X[300:400], y[300:400])
    with pytest.raises(TypeError, match="LogisticRegression"):
        FineTunedClassifier(LogisticRegression().fit(X[:300], y[:300])).fit(X[:300], y[:300])


def test_starts_from_a_model_file_read_at_each_fit(base, digits, tmp_path):
    X, y = digits
    path = tmp_path / "base.skd"
    skdigits.save(base, path)
    tuner = FineTunedClassifier(path, max_epochs=1, random_state=0, device="cpu")

    fitted = clone(tuner).fit(X[300:500], y[300:500])
    tuned = fine_tune(base, X[300:500], y[300:500], max_epochs=1, random_state=0, device="cpu")

    assert clone(tuner).model == path
    np.testing.assert_array_equal(fitted.predict_proba(X[600:]), tuned.predict_proba(X[600:]))
    with pytest.raises(FileNotFoundError):
        FineTunedClassifier(tmp_path / "missing.skd").fit(X[300:500], y[300:500])


def test_saving_writes_the_fine_tuned_model(base, digits, tmp_path):
    X, y = digits
    tuner = FineTunedClassifier(base, max_epochs=1, random_state=0, device="cpu")
    tuner.fit(X[300:500], y[300:500])

    skdigits.save(tuner, tmp_path / "tuned.skd")
    loaded = skdigits.load(tmp_path / "tuned.skd")

    assert isinstance(loaded, skdigits.CNNDigitClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X[600:]), tuner.predict_proba(X[600:]))
    with pytest.raises(NotFittedError):
        skdigits.save(FineTunedClassifier(base), tmp_path / "unfitted.skd")
    assert not (tmp_path / "unfitted.skd").exists()


def test_the_bundled_model_by_default(digits):
    X, y = digits
    images = X.reshape(-1, 8, 8)

    tuner = FineTunedClassifier(max_epochs=1, random_state=0, device="cpu")
    tuner.fit(images[:60], y[:60])

    assert tuner.get_params()["model"] == "pretrained"
    assert tuner.model_[-1].warm_start and tuner.model_[-1].image_shape_ == (28, 28)
    np.testing.assert_array_equal(tuner.classes_, np.arange(10))
    assert tuner.predict(images[60:70]).shape == (10,)
    # It reads numbers as the fine-tuned pipeline does.
    line = np.concatenate([np.pad(images[i], 4) for i in (70, 71, 72)], axis=1)
    page = 255 - np.kron(line, np.ones((6, 6))) * 12
    numbers, confidence = skdigits.read_numbers(tuner, [page])
    expected_numbers, expected_confidence = skdigits.read_numbers(tuner.model_, [page])
    assert numbers == expected_numbers and len(numbers[0]) == 3
    np.testing.assert_array_equal(confidence, expected_confidence)
    with pytest.raises(NotFittedError):
        skdigits.read_numbers(FineTunedClassifier(), [page])


def test_bad_parameters_and_data_are_refused_before_any_model_is_read(digits, tmp_path):
    X, y = digits
    missing = tmp_path / "missing.skd"  # reading it would raise FileNotFoundError

    with pytest.raises(InvalidParameterError, match="lr"):
        FineTunedClassifier(missing, lr=0).fit(X[:100], y[:100])
    with pytest.raises(InvalidParameterError, match="model"):
        FineTunedClassifier(3).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        FineTunedClassifier(missing).fit(X[:100], y[:99])


@pytest.mark.parametrize(
    "check",
    [
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
        check_estimators_unfitted,
    ],
)
def test_sklearn_checks_that_need_no_tables_of_other_widths(check, base):
    """The checks that do not fit the model's own 8x8 images on tables of 2 to 10 columns."""
    check("FineTunedClassifier", FineTunedClassifier(FrozenEstimator(base)))
