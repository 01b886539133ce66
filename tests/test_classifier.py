"""CNNDigitClassifier: fitting, inputs, labels, early stopping, errors and round trips."""

import itertools
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
import torch
from conftest import tiny
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

import skdigits
from skdigits import CNNDigitClassifier, ImageTransformer
from skdigits._classifier import (
    AUTO_BETA_2_LARGE,
    AUTO_BETA_2_SMALL,
    AUTO_EPOCHS,
    AUTO_LR_LARGE,
    AUTO_LR_SMALL,
    AUTO_LR_SMALL_COLOUR,
    MIN_AUTO_STEPS,
    MIN_AUTO_STEPS_SMALL,
)
from skdigits._networks import check_convs_per_stage


@pytest.fixture(scope="module")
def default_model(digits_split):
    X_train, _, y_train, _ = digits_split
    return CNNDigitClassifier(random_state=0).fit(X_train, y_train)


def test_default_model_reaches_95_percent_on_held_out_digits(default_model, digits_split):
    _, X_test, _, y_test = digits_split
    assert default_model.score(X_test, y_test) >= 0.95


def test_fit_returns_self_and_sets_fitted_attributes(small_digits):
    X, y = small_digits
    clf = tiny()
    assert clf.fit(X, y) is clf
    assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_features_in_ == 64
    assert clf.image_shape_ == (8, 8)
    assert clf.n_iter_ == len(clf.history_) == 3
    assert clf.net_.module_ is not None
    assert not hasattr(clf, "feature_names_in_")


def test_predict_proba_rows_are_probabilities_ordered_as_classes(small_digits):
    X, y = small_digits
    clf = tiny(max_epochs=8).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


def test_dataframe_input_records_feature_names(small_digits):
    X, y = small_digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    clf = tiny().fit(frame, y)
    assert_array_equal(clf.feature_names_in_, frame.columns)
    assert_array_equal(clf.predict(frame), tiny().fit(X, y).predict(X))


@pytest.mark.parametrize(
    "as_images",
    [
        lambda X: X.reshape(-1, 8, 8),
        lambda X: X.reshape(-1, 1, 8, 8),
        lambda X: X.reshape(-1, 8, 8, 1),
        lambda X: X.tolist(),
    ],
    ids=["n_h_w", "n_1_h_w", "n_h_w_1", "list"],
)
def test_image_layouts_train_the_same_model_as_flat_rows(small_digits, as_images):
    X, y = small_digits
    flat = tiny().fit(X, y)
    images = tiny().fit(as_images(X), y)
    assert images.image_shape_ == (8, 8)
    assert_array_equal(images.predict_proba(as_images(X)), flat.predict_proba(X))
    # A model fitted on images also takes flat rows of the same pixels, and vice versa.
    assert_array_equal(images.predict_proba(X), flat.predict_proba(as_images(X)))


@pytest.mark.parametrize(
    "rescale",
    [lambda X: X / 16, lambda X: X / 8 - 1, lambda X: X.astype(np.float32)],
    ids=["0..1", "-1..1", "float32"],
)
def test_pixel_scale_is_learned_so_any_range_trains_the_same_model(small_digits, rescale):
    X, y = small_digits
    reference = tiny().fit(X, y)
    rescaled = tiny().fit(rescale(X), y)
    assert_array_equal(rescaled.predict_proba(rescale(X)), reference.predict_proba(X))


def test_uint8_images_reach_the_accuracy_of_the_original_scale(digits_split):
    X_train, X_test, y_train, y_test = digits_split

    def to_uint8(X):
        return np.round(X * 255 / 16).astype(np.uint8)

    original = tiny(channels=(16, 32), max_epochs=10).fit(X_train, y_train)
    uint8 = tiny(channels=(16, 32), max_epochs=10).fit(to_uint8(X_train), y_train)
    assert uint8.net_.module_.pixel_span.item() == 255
    assert abs(uint8.score(to_uint8(X_test), y_test) - original.score(X_test, y_test)) < 0.03


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 8), (12, 12), (28, 28)])
def test_any_image_size_trains_with_the_same_network(shape):
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], 40)
    # Class 1 images are brighter on average: learnable at any size, even 1x1.
    X = rng.uniform(size=(80, *shape)) + y[:, None, None]
    clf = tiny(max_epochs=10, batch_size=16).fit(X, y)
    assert clf.image_shape_ == shape
    assert clf.score(X, y) > 0.9


def test_non_square_rows_take_their_shape_from_image_shape(small_digits):
    X, y = small_digits
    cropped = X.reshape(-1, 8, 8)[:, 1:7, :].reshape(len(X), 48)  # 6x8 images
    with pytest.raises(ValueError, match="48 is not a perfect square.*image_shape"):
        tiny().fit(cropped, y)
    assert tiny(image_shape=(6, 8)).fit(cropped, y).image_shape_ == (6, 8)
    assert tiny(image_shape=(-1, 8)).fit(cropped, y).image_shape_ == (6, 8)
    with pytest.raises(ValueError, match=r"image_shape=\(7, 7\) does not fit rows of 48"):
        tiny(image_shape=(7, 7)).fit(cropped, y)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 5, 9]),
        np.array(["seven", "one", "four"]),
        np.array(["seven", "one", "four"], dtype=object),
        np.array([-1.0, 2.0, 7.0]),
    ],
    ids=["ints-from-3", "str", "object", "integral-floats"],
)
def test_labels_of_any_kind_are_sorted_and_predicted_back(small_digits, labels):
    X, y = small_digits
    keep = y < 3
    X, y = X[keep], labels[y[keep]]
    clf = tiny(max_epochs=10, batch_size=16).fit(X, y)
    assert_array_equal(clf.classes_, np.sort(labels))
    predicted = clf.predict(X)
    assert predicted.dtype == y.dtype
    assert set(predicted) <= set(labels)
    assert clf.score(X, y) > 0.8


def test_bool_labels_are_predicted_as_bools(small_digits):
    X, y = small_digits
    is_zero = y == 0
    clf = tiny(max_epochs=6, batch_size=16).fit(X, is_zero)
    assert_array_equal(clf.classes_, [False, True])
    assert clf.predict(X).dtype == bool
    assert clf.score(X, is_zero) > 0.8


def test_early_stopping_restores_the_best_epoch_weights(small_digits):
    X, y = small_digits
    # A high learning rate on few samples makes the validation loss wander, so the best
    # epoch is rarely the last one.
    clf = tiny(max_epochs=12, lr=0.05, patience=3, validation_fraction=0.3).fit(X, y)
    valid_losses = clf.history_[:, "valid_loss"]
    assert clf.best_epoch_ == 1 + int(np.argmin(valid_losses))
    stopping = dict(clf.net_.callbacks_)["early_stopping"]
    for name, tensor in clf.net_.module_.state_dict().items():
        torch.testing.assert_close(tensor, stopping.best_model_weights_[name])


def test_early_stopping_ends_training_after_patience_epochs_without_improvement(small_digits):
    X, y = small_digits
    clf = tiny(max_epochs=40, lr=0.05, patience=2, validation_fraction=0.3).fit(X, y)
    assert clf.n_iter_ < 40
    assert clf.n_iter_ == clf.best_epoch_ + 2


def test_history_records_losses_and_validation_accuracy_per_epoch(small_digits):
    X, y = small_digits
    clf = tiny(max_epochs=4).fit(X, y)
    for row in clf.history_:
        assert {"epoch", "train_loss", "valid_loss", "valid_acc", "dur"} <= set(row)
        assert 0 <= row["valid_acc"] <= 1


@pytest.mark.parametrize("n_samples", [300, 12])
def test_without_validation_all_data_trains_for_max_epochs(small_digits, n_samples):
    X, y = small_digits
    X, y = X[:n_samples], y[:n_samples]
    # 12 samples of 10 classes leave no room for a stratified validation split.
    fraction = 0 if n_samples == 300 else 0.1
    clf = tiny(max_epochs=4, validation_fraction=fraction).fit(X, y)
    assert clf.n_iter_ == clf.best_epoch_ == 4
    assert "valid_loss" not in clf.history_[-1]


def test_same_random_state_gives_identical_predictions(small_digits):
    X, y = small_digits
    first = tiny(random_state=7).fit(X, y).predict_proba(X)
    again = tiny(random_state=7).fit(X, y).predict_proba(X)
    other = tiny(random_state=8).fit(X, y).predict_proba(X)
    assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_fit_leaves_the_global_torch_random_state_alone(small_digits):
    X, y = small_digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny().fit(X, y)
    assert_array_equal(torch.rand(3), expected)


def test_augmentation_changes_training_but_not_prediction(small_digits):
    X, y = small_digits
    plain = tiny().fit(X, y)
    augmented = tiny(augment=0.5).fit(X, y)
    assert not np.array_equal(plain.predict_proba(X), augmented.predict_proba(X))
    assert_array_equal(augmented.predict_proba(X), augmented.predict_proba(X))


@pytest.mark.parametrize(
    "bad_value, message",
    [(np.nan, "NaN"), (np.inf, "infinity")],
)
def test_non_finite_pixels_are_rejected(small_digits, bad_value, message):
    X, y = small_digits
    X = X.copy()
    X[3, 5] = bad_value
    with pytest.raises(ValueError, match=message):
        tiny().fit(X, y)
    clf = tiny().fit(small_digits[0], y)
    with pytest.raises(ValueError, match=message):
        clf.predict(X)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.empty((0, 64)), np.empty(0), "0 sample"),
        (np.ones((10, 64)), np.zeros(10), "only one class"),
        (np.ones((10, 64)), np.linspace(0, 1, 10), "Unknown label type: continuous"),
        (np.ones((10, 64)), np.arange(9) % 2, "inconsistent numbers of samples"),
        (np.ones(64), np.arange(1), "Expected 2D array"),
    ],
    ids=["empty", "one-class", "continuous", "mismatched-lengths", "1d"],
)
def test_bad_training_data_raises_value_error_before_training(X, y, message, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", no_training)
    with pytest.raises(ValueError, match=message):
        tiny().fit(X, y)


def test_sparse_input_is_rejected_with_a_type_error(small_digits):
    X, y = small_digits
    with pytest.raises(TypeError, match="dense data is required"):
        tiny().fit(sp.csr_matrix(X), y)


def test_predicting_before_fit_raises_not_fitted_error(small_digits):
    X, _ = small_digits
    for method in ("predict", "predict_proba", "predict_log_proba", "score", "save"):
        args = (X, np.zeros(len(X))) if method == "score" else (X,)
        with pytest.raises(NotFittedError):
            getattr(CNNDigitClassifier(), method)(*args)


def test_images_of_another_size_raise_an_error_naming_both_shapes(small_digits):
    X, y = small_digits
    clf = tiny().fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(16, 16\).*shape \(8, 8\)"):
        clf.predict(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match=r"expecting 64 features.*shape \(8, 8\).*256 pixels"):
        clf.predict(np.zeros((2, 256)))


def test_images_of_other_channel_counts_than_1_3_4_are_rejected(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"1, 3 \(RGB\) or 4 \(RGBA\) channels"):
        tiny().fit(np.zeros((len(X), 2, 8, 8)), y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"channels": ()}, "channels must be 1 to 10 positive ints"),
        ({"channels": (4, -8)}, "channels must be 1 to 10 positive ints"),
        ({"channels": (8,) * 11}, "channels must be 1 to 10 positive ints"),
        ({"channels": (8, 2048)}, "of at most 1024"),
        ({"hidden_units": 20_000}, "'hidden_units' parameter"),
        ({"convs_per_stage": (2, 2, 2)}, r"one int per stage \(2 here"),
        ({"convs_per_stage": 0}, "'convs_per_stage' parameter"),
        ({"convs_per_stage": 9}, "each 1 to 8"),
        ({"n_networks": 0}, "'n_networks' parameter"),
        ({"n_networks": 17}, "'n_networks' parameter"),
        ({"precision": "float16"}, "'precision' parameter"),
        ({"image_shape": (1, 2048)}, "exceeds the 1024 pixels"),
        ({"lr": 0}, "'lr' parameter"),
        ({"beta_2": 1.0}, "'beta_2' parameter"),
        ({"beta_2": -0.1}, "'beta_2' parameter"),
        ({"warmup_fraction": 0}, "'warmup_fraction' parameter"),
        ({"warmup_fraction": 1}, "'warmup_fraction' parameter"),
        ({"convs_per_stage": "deep"}, "'convs_per_stage' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"device": "gpu"}, "not a torch device"),
        ({"image_shape": (8,)}, "image_shape must be two"),
    ],
)
def test_invalid_parameters_raise_value_error_at_fit(small_digits, params, message):
    X, y = small_digits
    with pytest.raises(ValueError, match=message):
        tiny(**params).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error_and_auto_falls_back_to_cpu(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        tiny(device="cuda").fit(X, y)
    assert tiny(device="auto").fit(X, y).net_.device == "cpu"


def test_clone_pickle_and_joblib_round_trips_predict_the_same(small_digits, tmp_path):
    X, y = small_digits
    clf = tiny().fit(X, y)
    expected = clf.predict_proba(X)
    assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "model.joblib")
    assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X), expected)
    assert_array_equal(clone(clf).fit(X, y).predict_proba(X), expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_pickled_on_a_gpu_unpickles_and_predicts_on_a_cpu_machine(small_digits):
    X, y = small_digits
    clf = tiny().fit(X, y)
    expected = clf.predict_proba(X)
    # What a GPU-fitted net records; skorch maps its tensors to the CPU when no GPU exists.
    clf.net_.device = "cuda"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        restored = pickle.loads(pickle.dumps(clf))
    assert str(restored.net_.device) == "cpu"
    assert_array_equal(restored.predict_proba(X), expected)


class _InterruptAt(Callback):
    """Raise KeyboardInterrupt in the middle of an epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_during_fit_keeps_the_best_weights_and_a_usable_model(small_digits):
    X, y = small_digits
    with pytest.warns(UserWarning, match="interrupted after 2 of 6 epochs"):
        clf = tiny(max_epochs=6, callbacks=[_InterruptAt(epoch=3)]).fit(X, y)
    assert clf.n_iter_ == len(clf.history_) == 2
    assert clf.best_epoch_ <= 2
    stopping = dict(clf.net_.callbacks_)["early_stopping"]
    for name, tensor in clf.net_.module_.state_dict().items():
        torch.testing.assert_close(tensor, stopping.best_model_weights_[name])
    assert clf.predict(X).shape == (len(X),)


def test_strided_stem_on_images_too_small_is_an_error_before_training():
    X = np.random.default_rng(0).random((20, 9))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="stem='strided' needs images of at least 4x4"):
        tiny(stem="strided").fit(X, y)


# Sample and class weights.


def test_zero_sample_weight_removes_a_class_from_what_is_learned(small_digits):
    X, y = small_digits
    weight = np.where(y == 3, 0.0, 1.0)
    clf = tiny(max_epochs=10, augment=0).fit(X, y, sample_weight=weight)
    assert np.mean(clf.predict(X[y == 3]) == 3) < 0.2
    assert clf.score(X[y != 3], y[y != 3]) > 0.6


@pytest.mark.parametrize(
    "weight, message",
    [
        pytest.param(lambda n: -np.ones(n), "non-negative", id="negative"),
        pytest.param(lambda n: np.zeros(n), "non-zero|positive sum", id="all-zero"),
        pytest.param(lambda n: np.full(n, np.nan), "NaN", id="nan"),
        pytest.param(lambda n: np.ones(n + 1), "sample_weight", id="wrong-length"),
    ],
)
def test_invalid_sample_weight_raises_before_training(weight, message, small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=message):
        tiny().fit(X, y, sample_weight=weight(len(y)))


def test_balanced_class_weight_raises_the_recall_of_rare_classes(digits):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    rare = [1, 3, 5, 7, 9]
    keep = np.concatenate(
        [np.flatnonzero(y_train == c)[: 5 if c in rare else None] for c in range(10)]
    )
    recall = {}
    for class_weight in [None, "balanced"]:
        clf = CNNDigitClassifier(
            channels=(8, 16), max_epochs=15, class_weight=class_weight, random_state=0
        )
        clf.fit(X_train[keep], y_train[keep])
        recall[class_weight] = recall_score(
            y_test, clf.predict(X_test), labels=rare, average="macro"
        )
    assert recall["balanced"] > recall[None] + 0.03


def test_class_weight_dict_naming_an_unknown_class_is_an_error(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="not in class_weight"):
        tiny(class_weight={12: 2.0}).fit(X, y)


# Validation data.


def _batch_sizes(clf, kind):
    """Return how many images the first epoch trained or validated on."""
    return sum(batch.get(f"{kind}_batch_size", 0) for batch in clf.history_[0]["batches"])


def test_given_validation_data_replaces_the_held_out_split(small_digits, digits):
    X, y = small_digits
    X_val, y_val = digits[0][300:400], digits[1][300:400]
    clf = tiny(validation_fraction=0.5).fit(X, y, X_val=X_val, y_val=y_val)
    assert _batch_sizes(clf, "train") == len(X)
    assert _batch_sizes(clf, "valid") == len(X_val)


@pytest.mark.parametrize(
    "given, message",
    [
        pytest.param({"X_val": "X"}, "together", id="X_val-alone"),
        pytest.param({"y_val": "y"}, "together", id="y_val-alone"),
        pytest.param({"X_val": "X", "y_val": "y+20"}, "y lacks", id="unknown-label"),
        pytest.param({"X_val": "X[:, :10]", "y_val": "y"}, "features", id="wrong-shape"),
    ],
)
def test_invalid_validation_data_raises_before_training(given, message, small_digits):
    X, y = small_digits
    values = {name: eval(code, {"X": X, "y": y}) for name, code in given.items()}
    with pytest.raises(ValueError, match=message):
        tiny().fit(X, y, **values)


def test_pipeline_routes_validation_data_through_earlier_steps(small_digits, digits):
    X, y = small_digits
    X_val, y_val = digits[0][300:400], digits[1][300:400]
    with sklearn.config_context(enable_metadata_routing=True):
        clf = tiny().set_fit_request(X_val=True, y_val=True)
        pipeline = Pipeline(
            [("images", ImageTransformer()), ("cnn", clf)], transform_input=["X_val"]
        )
        pipeline.fit(X, y, X_val=X_val, y_val=y_val)
    assert _batch_sizes(pipeline[-1], "valid") == len(X_val)
    assert _batch_sizes(pipeline[-1], "train") == len(X)


# Calibrated probabilities.


def _expected_calibration_error(proba, y, bins=15):
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    error = 0.0
    for low, high in itertools.pairwise(np.linspace(0, 1, bins + 1)):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return error


def test_probabilities_are_calibrated_on_held_out_digits(default_model, digits_split):
    _, X_test, _, y_test = digits_split
    proba = default_model.predict_proba(X_test)
    assert _expected_calibration_error(proba, y_test) <= 0.02
    assert np.abs(proba.sum(axis=1) - 1).max() <= 1e-9


def test_calibration_changes_no_prediction(small_digits):
    X, y = small_digits
    calibrated = tiny(max_epochs=5).fit(X, y)
    plain = tiny(max_epochs=5, calibrate=False).fit(X, y)
    assert plain.temperature_ == 1.0
    assert calibrated.temperature_ != 1.0
    assert_array_equal(calibrated.predict(X), plain.predict(X))


def test_without_validation_data_the_temperature_stays_1(small_digits):
    X, y = small_digits
    assert tiny(validation_fraction=0).fit(X, y).temperature_ == 1.0


# partial_fit.


def test_partial_fit_needs_classes_on_the_first_call(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        tiny().partial_fit(X, y)


def test_partial_fit_rejects_labels_outside_the_classes(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"outside classes"):
        tiny().partial_fit(X, y, classes=np.arange(5))


def test_partial_fit_rejects_other_classes_after_the_first_call(small_digits):
    X, y = small_digits
    clf = tiny().partial_fit(X, y, classes=np.arange(10))
    with pytest.raises(ValueError, match="differs from the classes_"):
        clf.partial_fit(X, y, classes=np.arange(11))


def test_partial_fit_runs_one_epoch_per_call_and_learns(small_digits):
    X, y = small_digits
    clf = tiny(augment=0)
    for _ in range(6):
        clf.partial_fit(X[:150], y[:150], classes=np.arange(10))
        clf.partial_fit(X[150:], y[150:])
    assert clf.n_iter_ == len(clf.history_) == 12
    assert clf.score(X, y) > 0.6


def test_partial_fit_continues_from_a_loaded_model(small_digits, tmp_path):
    X, y = small_digits
    fitted = tiny(max_epochs=8, augment=0).fit(X, y)
    fitted.save(tmp_path / "model.skd")
    loaded = skdigits.load(tmp_path / "model.skd")
    before = loaded.score(X, y)
    loaded.partial_fit(X, y)
    # One epoch at the full learning rate moves the weights, from a good start.
    assert loaded.score(X, y) > before - 0.2
    assert not np.array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_warm_start_refuses_a_network_of_another_depth(small_digits):
    X, y = small_digits
    clf = tiny(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="convs_per_stage, hidden_units, n_networks or stem"):
        clf.set_params(warm_start=True, convs_per_stage=(1, 2)).fit(X, y)
    with pytest.raises(ValueError, match="n_networks or stem changed"):
        clf.set_params(convs_per_stage=1, n_networks=2).fit(X, y)


def test_a_refused_warm_start_leaves_the_fitted_classifier_as_it_was(small_digits, tmp_path):
    X, y = small_digits
    clf = tiny(max_epochs=1).fit(X, y)
    fitted, proba = dict(vars(clf)), clf.predict_proba(X)
    few = y < 5  # classes_ would change too
    with pytest.raises(ValueError, match="warm_start=True needs the network"):
        clf.set_params(warm_start=True, channels=(4, 16)).fit(X[few], y[few])
    assert vars(clf).keys() == fitted.keys()
    learned = [name for name in fitted if name.endswith("_")]
    assert "classes_" in learned
    assert all(vars(clf)[name] is fitted[name] for name in learned)
    assert clf.channels_ == (4, 8)
    assert_array_equal(clf.predict_proba(X), proba)
    # Its attributes still describe its network: the file it saves loads.
    clf.set_params(channels=(4, 8)).save(tmp_path / "model.skd")
    assert_array_equal(skdigits.load(tmp_path / "model.skd").predict_proba(X), proba)


def test_n_networks_trains_an_ensemble_that_predicts_its_networks_mean_probability(
    small_digits,
):
    X, y = small_digits
    # On the CPU: the test runs the networks on CPU tensors.
    clf = tiny(n_networks=3, max_epochs=4, device="cpu").fit(X, y)
    networks = clf.net_.module_.networks
    assert len(networks) == 3
    first, second = (network.features[0].conv.weight for network in networks[:2])
    assert not torch.equal(first, second)
    with torch.no_grad():
        rows = torch.as_tensor(X, dtype=torch.float32)
        members = torch.stack([torch.softmax(network(rows), dim=1) for network in networks])
    logits = np.log(members.mean(dim=0).double().numpy()) / clf.temperature_
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-6)
    assert clf.score(X, y) > 0.5


def test_an_ensembles_loss_is_the_mean_of_its_networks_losses(small_digits):
    X, y = small_digits
    net = tiny(n_networks=2, max_epochs=1, device="cpu").fit(X, y).net_  # CPU tensors below
    y_pred, y_true = torch.randn(2, 6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    weights = {"X": torch.zeros(6, 64), "sample_weight": torch.linspace(0.5, 1.5, 6)}
    for X_batch in (None, weights):
        alone = [net.get_loss(logits, y_true, X=X_batch, training=True) for logits in y_pred]
        together = net.get_loss(y_pred, y_true, X=X_batch, training=True)
        torch.testing.assert_close(together, torch.stack(alone).mean())


def test_warm_start_of_an_ensemble_on_new_classes_gives_each_network_a_new_output_layer(
    small_digits,
):
    X, y = small_digits
    clf = tiny(n_networks=2, max_epochs=2).fit(X[y < 3], y[y < 3])
    before = [network.features[0].conv.weight.clone() for network in clf.net_.module_.networks]
    # No training: the copied weights are still the fitted ones.
    clf.set_params(warm_start=True, max_epochs=1, lr=1e-12).fit(X, y)
    n_classes = len(np.unique(y))
    assert clf.predict_proba(X).shape == (len(X), n_classes)
    for network, weight in zip(clf.net_.module_.networks, before, strict=True):
        assert network.head[-1].out_features == n_classes
        torch.testing.assert_close(network.features[0].conv.weight, weight)


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_precision_sets_the_arithmetic_of_training_and_prediction_stays_float32(
    precision, small_digits, monkeypatch
):
    X, y = small_digits
    dtypes = []
    forward = torch.nn.Conv2d.forward

    def recording_forward(conv, x):
        out = forward(conv, x)
        dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Conv2d, "forward", recording_forward)
    clf = tiny(precision=precision, max_epochs=1).fit(X, y)
    assert set(dtypes) == {torch.bfloat16 if precision == "bfloat16" else torch.float32}
    assert all(p.dtype == torch.float32 for p in clf.net_.module_.parameters())
    assert np.isfinite(clf.history_[-1]["train_loss"])
    assert clf.predict_proba(X).dtype == np.float64
    # Validation and prediction run the folded inference path in float32.
    logits = clf.net_.forward(X[:4].astype(np.float32), training=False)
    assert logits.dtype == torch.float32


@pytest.mark.parametrize(
    ("instructions", "expected"), [(True, torch.bfloat16), (False, None), ("missing", None)]
)
def test_auto_precision_trains_in_bfloat16_only_on_cpus_with_its_instructions(
    instructions, expected, monkeypatch
):
    from skdigits._classifier import _training_dtype

    if instructions == "missing":  # an older torch without the check
        monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    else:
        # raising=False: torch 2.2 lacks the check, and "auto" then trains in float32.
        monkeypatch.setattr(
            torch.cpu, "_is_avx512_bf16_supported", lambda: instructions, raising=False
        )
    assert _training_dtype("auto", "cpu") is expected
    assert _training_dtype("bfloat16", "cpu") is torch.bfloat16
    assert _training_dtype("float32", "cpu") is None


def test_warm_start_continues_from_a_loaded_model(small_digits, tmp_path):
    X, y = small_digits
    tiny(max_epochs=8, augment=0).fit(X, y).save(tmp_path / "model.skd")
    loaded = skdigits.load(tmp_path / "model.skd")
    cold = tiny(max_epochs=1, augment=0).fit(X, y).score(X, y)
    warm = loaded.set_params(warm_start=True, max_epochs=1, augment=0).fit(X, y).score(X, y)
    assert warm > cold


# Threads.


class _RecordThreads(Callback):
    """Record torch's thread count when training begins."""

    def on_train_begin(self, net, **kwargs):
        self.threads = torch.get_num_threads()


def test_n_threads_sets_torch_threads_during_fit_and_restores_them(small_digits):
    X, y = small_digits
    before = torch.get_num_threads()
    recorder = _RecordThreads()
    tiny(n_threads=1, callbacks=[recorder]).fit(X, y)
    assert recorder.threads == 1
    assert torch.get_num_threads() == before


def _threads_during_fit(X, y):
    recorder = _RecordThreads()
    tiny(callbacks=[recorder]).fit(X, y)
    return recorder.threads


def test_default_threads_in_a_parallel_search_are_the_share_joblib_grants(small_digits):
    X, y = small_digits
    threads = joblib.Parallel(n_jobs=2)(
        joblib.delayed(_threads_during_fit)(X, y) for _ in range(2)
    )
    assert max(threads) <= max(1, joblib.cpu_count() // 2)


@pytest.mark.parametrize(
    ("n_images", "side", "affine", "stroke"),
    [
        (300, 8, 1.0, 0.0),
        (300, 16, 1.0, 0.5),
        (10_000, 24, 0.5, 0.0),
        (10_000, 16, 0.0, 0.0),
        (10_000, 8, 0.0, 0.0),
    ],
)
def test_auto_augmentation_fits_the_data_size_and_image_size(
    n_images, side, affine, stroke, digits
):
    # Affine: full strength on small data, half on large images, none on large small ones.
    # Stroke width: only on small data of at least 16 pixels a side.
    X, y = digits
    X = np.kron(X.reshape(-1, 8, 8), np.ones((side // 8, side // 8), np.float32))
    X, y = np.resize(X, (n_images, side, side)), np.resize(y, n_images)
    network = tiny(max_epochs=1, validation_fraction=0).fit(X, y).net_.module_
    assert (network.augment, network.stroke) == (affine, stroke)
    explicit = tiny(max_epochs=1, validation_fraction=0, augment=0.2, stroke_augment=0.3)
    network = explicit.fit(X[:300], y[:300]).net_.module_
    assert (network.augment, network.stroke) == (0.2, 0.3)


def test_stroke_augmentation_above_one_is_rejected_before_training(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="stroke_augment"):
        tiny(stroke_augment=1.5).fit(X, y)


def test_auto_epochs_give_small_data_at_least_1600_optimizer_steps(monkeypatch, digits):
    X, y = digits
    auto = dict(max_epochs="auto", batch_size="auto", validation_fraction=0, channels=(4,))

    def steps(n_images):
        clf = tiny(**auto).fit(X[:n_images], y[:n_images])
        return [len(epoch["batches"]) for epoch in clf.history_]

    per_epoch = steps(1000)
    assert sum(per_epoch) >= MIN_AUTO_STEPS_SMALL > sum(per_epoch[:-1])
    # 100 images in batches of 16 would need 229 epochs: the cap of 100 holds.
    per_epoch = steps(100)
    assert len(per_epoch) == 100 and sum(per_epoch) < MIN_AUTO_STEPS_SMALL
    # Above AUGMENT_BELOW images, fewer steps: here 1,000 images stand in for 10,000.
    monkeypatch.setattr(skdigits._classifier, "AUGMENT_BELOW", 500)
    per_epoch = steps(1000)
    assert sum(per_epoch) >= MIN_AUTO_STEPS > sum(per_epoch[:-1])
    # Data that takes the steps in fewer epochs still trains for AUTO_EPOCHS: 1,000 images
    # in batches of 16 (63 steps an epoch) stand in for large data, with a minimum of 50.
    monkeypatch.setattr(skdigits._classifier, "MIN_AUTO_STEPS", 50)
    assert len(steps(1000)) == AUTO_EPOCHS


@pytest.mark.parametrize("name", sorted(skdigits.PRESETS))
def test_every_preset_builds_the_network_it_names(name, small_digits):
    X, y = small_digits
    preset = skdigits.PRESETS[name]
    clf = CNNDigitClassifier(**{**preset, "max_epochs": 1}, random_state=0).fit(X, y)
    defaults = CNNDigitClassifier().get_params()
    module = clf.net_.module_
    networks = getattr(module, "networks", [module])
    assert len(networks) == preset.get("n_networks", defaults["n_networks"])
    # "auto" channels are the wider ones on these 8x8 images (test_persistence.py).
    channels = preset.get("channels", clf.channels_)
    assert clf.channels_ == tuple(channels)
    convs = check_convs_per_stage(
        preset.get("convs_per_stage", defaults["convs_per_stage"]), len(channels)
    )
    stages = [c for c, n in zip(channels, convs, strict=True) for _ in range(n)]
    for network in networks:
        convolutions = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [conv.out_channels for conv in convolutions] == stages
        dense = network.head[1]
        assert dense.out_features == preset.get("hidden_units", defaults["hidden_units"])
        assert network.augment == preset.get("augment", 1.0)  # "auto" on 300 images
    # A preset without validation trains on every image: no held-out loss, no temperature.
    validates = preset.get("validation_fraction", defaults["validation_fraction"]) > 0
    assert ("valid_loss" in clf.history_[-1]) == validates
    assert (clf.temperature_ != 1.0) == validates


def test_auto_learning_rate_and_beta_2_are_larger_and_shorter_on_large_data(
    monkeypatch, small_digits
):
    X, y = small_digits

    def peak_rate_and_betas(**params):
        clf = tiny(max_epochs=2, **params).fit(X, y)
        rates = [b["event_lr"] for e in clf.history_ for b in e["batches"] if "event_lr" in b]
        return max(rates), clf.net_.optimizer_.param_groups[0]["betas"]

    rate, (beta_1, beta_2) = peak_rate_and_betas()
    assert (rate, beta_2) == (pytest.approx(AUTO_LR_SMALL, rel=0.05), AUTO_BETA_2_SMALL)
    # The one-cycle schedule sets the first decay rate: it ends its cycle at 0.95.
    assert beta_1 == pytest.approx(0.95, abs=0.01)
    # Above AUGMENT_BELOW images: here 300 images stand in for 10,000.
    monkeypatch.setattr(skdigits._classifier, "AUGMENT_BELOW", 200)
    rate, (_, beta_2) = peak_rate_and_betas()
    assert (rate, beta_2) == (pytest.approx(AUTO_LR_LARGE, rel=0.05), AUTO_BETA_2_LARGE)
    rate, (_, beta_2) = peak_rate_and_betas(lr=0.02, beta_2=0.95)
    assert (rate, beta_2) == (pytest.approx(0.02, rel=0.05), 0.95)


def test_auto_learning_rate_is_halved_for_small_colour_data(monkeypatch, small_digits):
    X, y = small_digits
    colour = np.repeat(X.reshape(-1, 8, 8, 1), 3, axis=3)

    def peak_rate():
        clf = tiny(max_epochs=1).fit(colour, y)
        return max(b["event_lr"] for e in clf.history_ for b in e["batches"] if "event_lr" in b)

    assert peak_rate() == pytest.approx(AUTO_LR_SMALL_COLOUR, rel=0.05)
    assert AUTO_LR_SMALL_COLOUR < AUTO_LR_SMALL
    monkeypatch.setattr(skdigits._classifier, "AUGMENT_BELOW", 200)
    assert peak_rate() == pytest.approx(AUTO_LR_LARGE, rel=0.05)
    colour_part = tiny().partial_fit(colour, y, classes=np.unique(y))
    assert colour_part.net_.optimizer_.param_groups[0]["lr"] == AUTO_LR_SMALL_COLOUR


def test_partial_fit_trains_at_the_small_data_rate_whatever_the_data_size(
    monkeypatch, small_digits
):
    X, y = small_digits
    monkeypatch.setattr(skdigits._classifier, "AUGMENT_BELOW", 10)
    clf = tiny().partial_fit(X, y, classes=np.unique(y))
    group = clf.net_.optimizer_.param_groups[0]
    assert (group["lr"], group["betas"][1]) == (AUTO_LR_SMALL, AUTO_BETA_2_SMALL)


@pytest.mark.parametrize("fraction", [0.15, 0.5])
def test_warmup_fraction_is_the_share_of_steps_before_the_peak_learning_rate(
    fraction, small_digits
):
    X, y = small_digits
    clf = tiny(warmup_fraction=fraction, max_epochs=4, lr=1e-2).fit(X, y)
    batches = [batch for epoch in clf.history_ for batch in epoch["batches"]]
    rates = [batch["event_lr"] for batch in batches if "event_lr" in batch]  # training ones
    peak = int(np.argmax(rates))
    assert abs(peak - fraction * (len(rates) - 1)) <= 1
    assert rates[peak] == pytest.approx(1e-2)
    assert rates[0] < rates[peak] / 10 and rates[-1] < rates[peak] / 1000
