"""Shared fixtures: scikit-learn's bundled 8x8 digits and tiny, fast classifiers."""

import os

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdigits import CNNDigitClassifier


@pytest.fixture(scope="session")
def digits():
    """Return the 8x8 digits as ``(X, y)``: 1797 rows of 64 pixels from 0 to 16."""
    return load_digits(return_X_y=True)


@pytest.fixture(scope="session")
def digits_split(digits):
    """Return a stratified ``(X_train, X_test, y_train, y_test)`` split of the 8x8 digits."""
    X, y = digits
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def small_digits(digits):
    """Return the first 300 digits, enough for a tiny network to learn something."""
    X, y = digits
    return X[:300], y[:300]


def tiny(**params):
    """Return a classifier small enough to fit in a fraction of a second on a CPU."""
    # One convolution per stage: "auto" would give the 4-channel first stage a second one,
    # which a few dozen optimizer steps (all these tests train for) leave near chance.
    defaults = dict(
        channels=(4, 8),
        convs_per_stage=1,
        max_epochs=3,
        batch_size=64,
        # SKDIGITS_TEST_DEVICE=cuda runs the tests' networks on a GPU.
        device=os.environ.get("SKDIGITS_TEST_DEVICE", "cpu"),
        random_state=0,
    )
    return CNNDigitClassifier(**{**defaults, **params})
