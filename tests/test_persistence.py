"""Safe model files: round trips, what a loaded model keeps, and every way a file can be bad."""

import copy
import json
import os
import pickle
import struct
import sys

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from conftest import tiny
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from skorch.callbacks import EpochTimer
from skorch.history import History

from skdigits import _persistence, load

# A stdlib module nothing here imports: finding it in sys.modules after a load would mean the
# loader imported a name taken from the file.
PROBE_MODULE = "this"


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, y = small_digits
    return tiny(max_epochs=2).fit(X, y)


@pytest.fixture
def saved(fitted, tmp_path):
    path = tmp_path / "digits.skd"
    fitted.save(path)
    return path


def _round_trip(clf, tmp_path):
    path = tmp_path / "model.skd"
    clf.save(path)
    return load(path)


def _write_model_file(path, state, description_text):
    """Write a model file with a valid checksum around any weights and description."""
    payload = safetensors.torch.save(state, metadata={"skdigits": description_text})
    path.write_bytes(_persistence._pack(payload))


def _rewrite_description(path, change):
    """Apply ``change`` to the JSON description in ``path``, keeping the checksum valid.

    This is what an attacker can do: the checksum detects damage, not intent.
    """
    data = path.read_bytes()
    state, description = _persistence._read_payload(_persistence._unpack(data))
    change(description)
    _write_model_file(path, state, json.dumps(description))


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_round_trip_predicts_identical_probabilities_and_labels(fitted, saved, small_digits):
    X, _ = small_digits
    loaded = load(saved)
    assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_round_trip_keeps_parameters_and_fitted_attributes(fitted, saved):
    loaded = load(saved)
    assert loaded.get_params() == fitted.get_params()
    assert isinstance(loaded.channels, tuple)
    assert_array_equal(loaded.classes_, fitted.classes_)
    assert loaded.classes_.dtype == fitted.classes_.dtype
    for name in ["n_features_in_", "image_shape_", "pixel_range_", "best_epoch_", "n_iter_"]:
        assert getattr(loaded, name) == getattr(fitted, name), name


def test_history_is_restored_as_the_same_skorch_history(fitted, saved):
    loaded = load(saved)
    assert isinstance(loaded.history_, History)
    assert list(loaded.history_) == list(fitted.history_)
    assert loaded.net_.history is loaded.history_


def test_loaded_network_is_ready_to_predict_in_eval_mode(saved):
    assert not load(saved).net_.module_.training


@pytest.mark.parametrize(
    "make_labels",
    [
        pytest.param(
            lambda y: np.array(["zero", "one", "two", "many"])[np.minimum(y, 3)], id="str"
        ),
        pytest.param(lambda y: y % 2 == 0, id="bool"),
        pytest.param(lambda y: np.array(["odd", "even"], dtype=object)[y % 2], id="object"),
    ],
)
def test_labels_round_trip_with_their_dtype(make_labels, small_digits, tmp_path):
    X, y = small_digits
    clf = tiny(max_epochs=1).fit(X, make_labels(y))
    loaded = _round_trip(clf, tmp_path)
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.predict(X).dtype == clf.predict(X).dtype
    assert_array_equal(loaded.predict(X), clf.predict(X))


def test_model_fitted_on_image_arrays_round_trips(small_digits, tmp_path):
    X, y = small_digits
    images = X.reshape(-1, 8, 8)
    clf = tiny(max_epochs=1).fit(images, y)
    loaded = _round_trip(clf, tmp_path)
    assert loaded.image_shape_ == (8, 8)
    assert_array_equal(loaded.predict_proba(images), clf.predict_proba(images))


def test_feature_names_round_trip(small_digits, tmp_path):
    X, y = small_digits
    frame = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])
    clf = tiny(max_epochs=1).fit(frame, y)
    loaded = _round_trip(clf, tmp_path)
    assert_array_equal(loaded.feature_names_in_, clf.feature_names_in_)
    assert_array_equal(loaded.predict_proba(frame), clf.predict_proba(frame))


@pytest.mark.parametrize(
    "name, value",
    [("random_state", np.random.RandomState(0)), ("callbacks", [EpochTimer()])],
    ids=["random_state", "callbacks"],
)
def test_parameters_holding_objects_are_saved_as_none(name, value, fitted, tmp_path):
    clf = copy.deepcopy(fitted).set_params(**{name: value})
    assert _round_trip(clf, tmp_path).get_params()[name] is None


def test_model_saved_with_device_cuda_loads_on_cpu(fitted, small_digits, tmp_path):
    X, _ = small_digits
    # What a model trained on a GPU looks like on disk; this machine may have no GPU at all.
    clf = copy.deepcopy(fitted).set_params(device="cuda")
    loaded = _round_trip(clf, tmp_path)
    assert loaded.device == "cuda"
    assert {tensor.device.type for tensor in loaded.net_.module_.state_dict().values()} == {"cpu"}
    assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_model_trained_on_gpu_loads_on_cpu(small_digits, tmp_path):
    X, y = small_digits
    clf = tiny(max_epochs=1, device="cuda").fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert {tensor.device.type for tensor in loaded.net_.module_.state_dict().values()} == {"cpu"}
    # GPU convolutions may use TF32, so the two devices agree closely but not bit for bit.
    assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-3)


def test_load_leaves_the_global_torch_random_state_alone(saved):
    before = torch.random.get_rng_state()
    load(saved)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_load_never_unpickles(saved, monkeypatch, small_digits):
    def forbidden(*args, **kwargs):
        raise AssertionError("load must not unpickle")

    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    X, _ = small_digits
    assert load(saved).predict(X).shape == (len(X),)


def test_save_writes_exactly_one_file(fitted, tmp_path):
    fitted.save(tmp_path / "digits.skd")
    assert os.listdir(tmp_path) == ["digits.skd"]


def test_save_replaces_an_existing_file(fitted, tmp_path):
    path = tmp_path / "digits.skd"
    path.write_bytes(b"an older model")
    fitted.save(path)
    assert load(path).n_iter_ == fitted.n_iter_


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_save_leaves_existing_file_untouched(failing, fitted, tmp_path, monkeypatch):
    path = tmp_path / "digits.skd"
    path.write_bytes(b"an older model")

    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        fitted.save(path)
    assert path.read_bytes() == b"an older model"
    assert os.listdir(tmp_path) == ["digits.skd"]


def test_saving_unfitted_classifier_raises_not_fitted_and_writes_nothing(tmp_path):
    with pytest.raises(NotFittedError):
        tiny().save(tmp_path / "digits.skd")
    assert os.listdir(tmp_path) == []


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.skd")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(pickle.dumps({"weights": [1.0, 2.0]}), id="pickle"),
        pytest.param(bytes(range(256)) * 4, id="random"),
        pytest.param(b"", id="empty"),
    ],
)
def test_file_of_another_kind_is_not_a_skdigits_model_file(content, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a skdigits model file") as error:
        load(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("region", ["weights", "description", "checksum"])
def test_flipped_byte_is_detected_as_corruption(region, saved):
    data = saved.read_bytes()
    offsets = {
        "weights": len(data) - 5,  # safetensors puts the tensor bytes after its header
        "description": data.index(b"classes_"),
        "checksum": 30,  # the SHA-256 fills bytes 20 to 51
    }
    _flip_byte(saved, offsets[region])
    with pytest.raises(ValueError, match="corrupted or was modified") as error:
        load(saved)
    assert str(saved) in str(error.value)


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(lambda size: size - 1, id="last-byte"),
        pytest.param(lambda size: size // 2, id="half"),
        pytest.param(lambda size: 30, id="inside-header"),
    ],
)
def test_truncated_file_is_rejected(length, saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: length(len(data))])
    with pytest.raises(ValueError, match="truncated"):
        load(saved)


def test_file_from_a_newer_format_version_asks_to_upgrade(saved):
    data = bytearray(saved.read_bytes())
    data[8:12] = struct.pack("<I", _persistence.FORMAT_VERSION + 1)
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="version 2.*upgrade skdigits"):
        load(saved)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["params"].update(__class__=PROBE_MODULE), id="extra-param"),
        pytest.param(lambda d: d["params"].update(channels={"py/object": PROBE_MODULE}), id="obj"),
        pytest.param(
            lambda d: d["attributes"]["classes_"].update(dtype=f"{PROBE_MODULE}.s"), id="dtype"
        ),
    ],
)
def test_description_naming_a_python_object_is_rejected_without_importing_it(change, saved):
    assert PROBE_MODULE not in sys.modules
    _rewrite_description(saved, change)
    with pytest.raises(ValueError):
        load(saved)
    assert PROBE_MODULE not in sys.modules


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(module=PROBE_MODULE), id="module"),
        pytest.param(lambda d: d.update(__reduce__=[PROBE_MODULE, "s"]), id="reduce"),
        pytest.param(lambda d: d["params"].update(device=f"{PROBE_MODULE}.s"), id="device"),
    ],
)
def test_names_in_unread_places_are_ignored_without_importing_them(
    change, fitted, saved, small_digits
):
    X, _ = small_digits
    _rewrite_description(saved, change)
    assert_array_equal(load(saved).predict_proba(X), fitted.predict_proba(X))
    assert PROBE_MODULE not in sys.modules


@pytest.mark.parametrize(
    "name, value",
    [("dropout", "0.1"), ("max_epochs", [3]), ("channels", "abc"), ("lr", {"value": 1e-3})],
)
def test_parameter_of_the_wrong_type_is_rejected(name, value, saved):
    _rewrite_description(saved, lambda d: d["params"].update({name: value}))
    with pytest.raises(ValueError, match=name):
        load(saved)


@pytest.mark.parametrize(
    "section, key",
    [
        (None, "params"),
        (None, "attributes"),
        (None, "format_version"),
        ("attributes", "classes_"),
        ("attributes", "history_"),
    ],
)
def test_description_missing_a_key_is_rejected(section, key, saved):
    _rewrite_description(saved, lambda d: (d[section] if section else d).pop(key))
    with pytest.raises(ValueError, match=f"lacks '{key}'"):
        load(saved)


def test_description_that_is_not_json_is_rejected(saved):
    state, _ = _persistence._read_payload(_persistence._unpack(saved.read_bytes()))
    _write_model_file(saved, state, "{'params': None")
    with pytest.raises(ValueError, match="not valid JSON"):
        load(saved)


def test_weights_that_do_not_fit_the_parameters_are_rejected(saved):
    _rewrite_description(saved, lambda d: d["params"].update(channels=[4, 16]))
    with pytest.raises(ValueError, match="weights do not fit"):
        load(saved)
