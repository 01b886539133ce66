"""Safe model files: round trips, what a loaded model keeps, and every way a file can be bad."""

import copy
import hashlib
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
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import EpochTimer
from skorch.history import History

from skdigits import CNNDigitClassifier, DigitNormalizer, _persistence, load, save

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


@pytest.fixture(scope="module")
def fitted_pipeline(small_digits):
    X, y = small_digits
    # Enough epochs, without augmentation, that it reads the digits rather than guessing.
    steps = [("normalize", DigitNormalizer()), ("classify", tiny(max_epochs=5, augment=0))]
    return Pipeline(steps).fit(X, y)


@pytest.fixture
def saved_pipeline(fitted_pipeline, tmp_path):
    path = tmp_path / "pipeline.skd"
    save(fitted_pipeline, path)
    return path


def _round_trip(clf, tmp_path):
    path = tmp_path / "model.skd"
    clf.save(path)
    return load(path)


def _pages(X):
    """Return digits of ``X`` drawn dark on light pages, each page of another size.

    The 8x8 digits are enlarged by a different factor along each axis, and placed at a
    different spot, the way a scan differs from the training images.
    """
    pages = []
    for i, (tall, wide) in enumerate([(2, 2), (3, 5), (5, 3), (4, 4), (6, 2), (3, 3)]):
        digit = np.kron(X[i].reshape(8, 8) / 16, np.ones((tall, wide)))
        page = np.full((8 * tall + 10 + 3 * i, 8 * wide + 20), 0.9)
        top, left = 5 + i, 3 + 2 * i
        page[top : top + 8 * tall, left : left + 8 * wide] -= 0.8 * digit
        pages.append(page)
    return pages


def _write_model_file(path, state, description_text, version=_persistence.FORMAT_VERSION):
    """Write a model file with a valid checksum around any weights and description."""
    payload = safetensors.torch.save(state, metadata={"skdigits": description_text})
    digest = hashlib.sha256(payload).digest()
    header = _persistence._HEADER.pack(_persistence.MAGIC, version, len(payload), digest)
    path.write_bytes(header + payload)


def _read_model_file(path):
    """Return the weights and the decoded JSON description of a model file."""
    _, payload = _persistence._unpack(path.read_bytes())
    return _persistence._read_payload(payload)


def _rewrite_description(path, change):
    """Apply ``change`` to the JSON description in ``path``, keeping the checksum valid.

    This is what an attacker can do: the checksum detects damage, not intent.
    """
    state, description = _read_model_file(path)
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
    newer = _persistence.FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"version {newer}.*upgrade skdigits"):
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
        (None, "pipeline"),
        (None, "metadata"),
        ("attributes", "classes_"),
        ("attributes", "history_"),
    ],
)
def test_description_missing_a_key_is_rejected(section, key, saved):
    _rewrite_description(saved, lambda d: (d[section] if section else d).pop(key))
    with pytest.raises(ValueError, match=f"lacks '{key}'"):
        load(saved)


def test_description_that_is_not_json_is_rejected(saved):
    state, _ = _read_model_file(saved)
    _write_model_file(saved, state, "{'params': None")
    with pytest.raises(ValueError, match="not valid JSON"):
        load(saved)


def test_weights_that_do_not_fit_the_parameters_are_rejected(saved):
    _rewrite_description(saved, lambda d: d["params"].update(channels=[4, 16]))
    with pytest.raises(ValueError, match="weights do not fit"):
        load(saved)


def test_description_version_differing_from_the_header_is_rejected(saved):
    _rewrite_description(saved, lambda d: d.update(format_version=1))
    with pytest.raises(ValueError, match="'format_version' should be 2"):
        load(saved)


def test_version_1_classifier_file_still_loads(fitted, saved, small_digits):
    X, _ = small_digits
    # Version 1 described a classifier exactly as version 2 does, without pipeline and
    # metadata, and said 1 in the header and in the description.
    state, description = _read_model_file(saved)
    del description["pipeline"], description["metadata"]
    description["format_version"] = 1
    _write_model_file(saved, state, json.dumps(description), version=1)
    loaded, metadata = load(saved, return_metadata=True)
    assert metadata == {}
    assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_save_function_and_save_method_write_identical_files(fitted, tmp_path):
    save(fitted, tmp_path / "function.skd")
    fitted.save(tmp_path / "method.skd")
    assert (tmp_path / "function.skd").read_bytes() == (tmp_path / "method.skd").read_bytes()


def test_pipeline_round_trip_predicts_identical_probabilities_on_pages_of_any_size(
    fitted_pipeline, saved_pipeline, small_digits
):
    X, _ = small_digits
    pages = _pages(X)
    loaded = load(saved_pipeline)
    assert_array_equal(loaded.predict_proba(pages), fitted_pipeline.predict_proba(pages))


def test_pipeline_round_trip_keeps_the_step_names(saved_pipeline):
    loaded = load(saved_pipeline)
    assert isinstance(loaded, Pipeline)
    assert [name for name, _ in loaded.steps] == ["normalize", "classify"]


def test_pipeline_round_trip_keeps_normalizer_parameters_and_fitted_attributes(
    fitted_pipeline, tmp_path
):
    # Parameters matter only to a refit, so setting them after fitting keeps the model valid.
    pipeline = copy.deepcopy(fitted_pipeline)
    pipeline.set_params(normalize__image_shape=(8, 8), normalize__box=6, normalize__ink="dark")
    path = tmp_path / "pipeline.skd"
    save(pipeline, path)
    normalizer, loaded = pipeline[0], load(path)[0]
    assert isinstance(loaded, DigitNormalizer)
    assert loaded.get_params() == normalizer.get_params()
    for name in ["image_shape_", "box_", "centering_", "center_", "ink_", "framed_"]:
        assert getattr(loaded, name) == getattr(normalizer, name), name
        assert type(getattr(loaded, name)) is type(getattr(normalizer, name)), name


def test_pipeline_round_trip_keeps_the_classifier(fitted_pipeline, saved_pipeline):
    loaded = load(saved_pipeline)[-1]
    assert isinstance(loaded, CNNDigitClassifier)
    assert loaded.get_params() == fitted_pipeline[-1].get_params()


def test_pipeline_made_by_make_pipeline_round_trips_with_its_step_names(fitted_pipeline, tmp_path):
    pipeline = make_pipeline(*copy.deepcopy([step for _, step in fitted_pipeline.steps]))
    save(pipeline, tmp_path / "pipeline.skd")
    loaded = load(tmp_path / "pipeline.skd")
    assert [name for name, _ in loaded.steps] == ["digitnormalizer", "cnndigitclassifier"]


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(LogisticRegression(), id="sklearn-estimator"),
        pytest.param(make_pipeline(tiny()), id="pipeline-without-normalizer"),
        pytest.param(
            make_pipeline(DigitNormalizer(), FunctionTransformer(), tiny()), id="extra-step"
        ),
        pytest.param(make_pipeline(DigitNormalizer()), id="pipeline-without-classifier"),
        pytest.param(DigitNormalizer(), id="normalizer"),
    ],
)
def test_unsupported_model_raises_type_error_naming_what_is_supported(model, tmp_path):
    with pytest.raises(TypeError, match="DigitNormalizer then a CNNDigitClassifier"):
        save(model, tmp_path / "model.skd")
    assert os.listdir(tmp_path) == []


def test_saving_pipeline_with_unfitted_normalizer_raises_not_fitted(fitted, tmp_path):
    with pytest.raises(NotFittedError, match="DigitNormalizer"):
        save(make_pipeline(DigitNormalizer(), fitted), tmp_path / "pipeline.skd")
    assert os.listdir(tmp_path) == []


def test_saving_pipeline_whose_steps_disagree_on_image_shape_is_rejected(
    fitted_pipeline, tmp_path
):
    pipeline = copy.deepcopy(fitted_pipeline)
    pipeline[0].image_shape_ = (10, 10)
    with pytest.raises(ValueError, match="image_shape_ .* differs"):
        save(pipeline, tmp_path / "pipeline.skd")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "change, field",
    [
        pytest.param(lambda n: n["attributes"].update(box_=100), "box_", id="box-beyond-frame"),
        pytest.param(lambda n: n["attributes"].update(box_=0), "box_", id="box-zero"),
        pytest.param(lambda n: n["attributes"].update(ink_="purple"), "ink_", id="ink"),
        pytest.param(
            lambda n: n["attributes"].update(centering_="auto"), "centering_", id="centering"
        ),
        pytest.param(
            lambda n: n["attributes"].update(center_=[float("nan"), 3.5]), "center_", id="nan"
        ),
        pytest.param(
            lambda n: n["attributes"].update(center_=[3.5, -1.0]), "center_", id="outside"
        ),
        pytest.param(
            lambda n: n["attributes"].update(image_shape_=[0, 8]), "image_shape_", id="shape"
        ),
        pytest.param(lambda n: n["attributes"].pop("framed_"), "framed_", id="missing-framed"),
        pytest.param(lambda n: n["attributes"].update(framed_=1), "framed_", id="framed-int"),
        pytest.param(lambda n: n["params"].update(ink="purple"), "ink", id="ink-param"),
        pytest.param(lambda n: n["params"].update(box=True), "box", id="box-param"),
        pytest.param(
            lambda n: n["params"].update(image_shape=[8]), "image_shape", id="shape-param"
        ),
        pytest.param(lambda n: n.pop("attributes"), "attributes", id="missing-attributes"),
    ],
)
def test_tampered_normalizer_field_is_rejected_naming_it(change, field, saved_pipeline):
    _rewrite_description(saved_pipeline, lambda d: change(d["pipeline"]["normalizer"]))
    with pytest.raises(ValueError, match=f"DigitNormalizer: .*'{field}'"):
        load(saved_pipeline)


@pytest.mark.parametrize(
    "names",
    [["same", "same"], ["a__b", "classify"], ["memory", "classify"], ["normalize"], [1, 2]],
)
def test_invalid_step_names_are_rejected(names, saved_pipeline):
    _rewrite_description(saved_pipeline, lambda d: d["pipeline"].update(steps=names))
    with pytest.raises(ValueError, match="'steps'"):
        load(saved_pipeline)


def test_pipeline_whose_steps_disagree_on_image_shape_is_rejected_on_load(saved_pipeline):
    _rewrite_description(
        saved_pipeline,
        lambda d: d["pipeline"]["normalizer"]["attributes"].update(image_shape_=[10, 10]),
    )
    with pytest.raises(ValueError, match="image_shape_ .* differs"):
        load(saved_pipeline)


def test_metadata_round_trips(fitted, tmp_path):
    metadata = {
        "provenance": {"seed": 0, "accuracy": 0.9871, "note": "entraîné à Zürich"},
        "held_out": [3, 14, 15, 92],
        "flags": [True, False, None],
    }
    save(fitted, tmp_path / "model.skd", metadata=metadata)
    _, loaded = load(tmp_path / "model.skd", return_metadata=True)
    assert loaded == metadata


def test_pipeline_metadata_round_trips(fitted_pipeline, tmp_path):
    save(fitted_pipeline, tmp_path / "pipeline.skd", metadata={"source": "load_digits"})
    _, loaded = load(tmp_path / "pipeline.skd", return_metadata=True)
    assert loaded == {"source": "load_digits"}


def test_metadata_tuples_and_numpy_scalars_come_back_as_lists_and_python_scalars(fitted, tmp_path):
    metadata = {"channels": (8, 16), "accuracy": np.float32(0.5), "epochs": np.int64(7)}
    save(fitted, tmp_path / "model.skd", metadata=metadata)
    _, loaded = load(tmp_path / "model.skd", return_metadata=True)
    assert loaded == {"channels": [8, 16], "accuracy": 0.5, "epochs": 7}
    assert type(loaded["epochs"]) is int


def test_load_returns_just_the_model_unless_asked_for_metadata(fitted, tmp_path):
    save(fitted, tmp_path / "model.skd", metadata={"seed": 0})
    assert isinstance(load(tmp_path / "model.skd"), CNNDigitClassifier)


def test_model_saved_without_metadata_loads_with_empty_metadata(saved):
    _, metadata = load(saved, return_metadata=True)
    assert metadata == {}


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"model": object()}, id="object"),
        pytest.param({"held_out": np.arange(3)}, id="array"),
        pytest.param({"labels": {1, 2}}, id="set"),
        pytest.param({"nested": {7: "seven"}}, id="int-key"),
        pytest.param(["not", "a", "dict"], id="list"),
    ],
)
def test_metadata_json_cannot_store_raises_type_error(metadata, fitted, tmp_path):
    with pytest.raises(TypeError, match="metadata"):
        save(fitted, tmp_path / "model.skd", metadata=metadata)
    assert os.listdir(tmp_path) == []


def test_metadata_larger_than_1_mb_raises_value_error(fitted, tmp_path):
    with pytest.raises(ValueError, match="bytes as JSON"):
        save(fitted, tmp_path / "model.skd", metadata={"notes": "x" * 1_000_000})
    assert os.listdir(tmp_path) == []


def _nested(depth):
    """Return lists nested ``depth`` levels deep."""
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_metadata_nested_too_deeply_raises_value_error(fitted, tmp_path):
    with pytest.raises(ValueError, match="nested more than 32 levels"):
        save(fitted, tmp_path / "model.skd", metadata={"deep": _nested(32)})


def test_metadata_nested_to_the_limit_round_trips(fitted, tmp_path):
    metadata = {"deep": _nested(31)}
    save(fitted, tmp_path / "model.skd", metadata=metadata)
    assert load(tmp_path / "model.skd", return_metadata=True)[1] == metadata


@pytest.mark.parametrize(
    "metadata, message",
    [
        pytest.param(["a", "list"], "'metadata' should be an object", id="not-an-object"),
        pytest.param({"deep": _nested(40)}, "nested more than 32 levels", id="too-deep"),
    ],
)
def test_stored_metadata_that_save_would_refuse_is_rejected(metadata, message, saved):
    _rewrite_description(saved, lambda d: d.update(metadata=metadata))
    with pytest.raises(ValueError, match=message):
        load(saved)
