"""scikit-learn's own estimator checks, run on both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdigits import CNNDigitClassifier, ImageTransformer

# The checks feed tabular data with any number of features (2, 3, 5, ...), so the estimators
# under test read each row as a one-pixel-high image; the network is kept tiny for speed.
CHECKED = [
    CNNDigitClassifier(
        image_shape=(1, -1), channels=(8, 16), batch_size=32, max_epochs=20, device="cpu"
    ),
    # The same with the training options of the scikit-learn parity work set.
    CNNDigitClassifier(
        image_shape=(1, -1),
        channels=(8, 16),
        batch_size=32,
        max_epochs=20,
        device="cpu",
        class_weight="balanced",
        calibrate=False,
        n_threads=1,
    ),
    ImageTransformer(image_shape=(1, -1)),
]


def expected_failures(estimator):
    """Return the checks an estimator is expected to fail, with the reason."""
    if not isinstance(estimator, CNNDigitClassifier):
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "training is stochastic (shuffled batches, dropout, a random validation split), "
            "so a weight of 2 cannot give exactly the model that repeating the image gives"
        ),
    }


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
