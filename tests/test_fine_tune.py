"""skdigits.fine_tune: a fitted model trained further on new images, the model left as it is."""

import numpy as np
import pytest
import torch
from conftest import tiny
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skdigits import DigitNormalizer, fine_tune


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
