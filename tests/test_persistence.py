"""Safe model files: round trips, what a loaded model keeps, and every way a file can be bad."""

import copy
import functools
import hashlib
import json
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from conftest import tiny as _tiny
from numpy.testing import assert_allclose, assert_array_equal
from safetensors import safe_open
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import EpochTimer
from skorch.history import History

import skdigits._classifier
from skdigits import (
    CNNDigitClassifier,
    DigitNormalizer,
    _persistence,
    check_model_path,
    load,
    save,
)

MODEL_FILES = Path(__file__).parent / "data" / "model_files"

# A stdlib module nothing here imports: finding it in sys.modules after a load would mean the
# loader imported a name taken from the file.
PROBE_MODULE = "this"


# Models load onto the CPU, and these tests compare them bit for bit with the models they
# were saved from: those train on the CPU too, even where SKDIGITS_TEST_DEVICE names a GPU
# (test_model_trained_on_gpu_loads_on_cpu asks for one).
tiny = functools.partial(_tiny, device="cpu")


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


def _write_model_file(path, tensors, description_text, format_version="3"):
    """Write a model file as anyone can: any tensors and description, a valid checksum."""
    draft = safetensors.torch.save(tensors)
    data = draft[8 + struct.unpack_from("<Q", draft)[0] :]
    digest = hashlib.sha256(data + description_text.encode()).hexdigest()
    header = {
        "format": "skdigits-model",
        "format_version": format_version,
        "sha256": digest,
        "skdigits": description_text,
    }
    path.write_bytes(safetensors.torch.save(tensors, metadata=header))


def _write_legacy_file(path, tensors, description_text, version):
    """Write a model file of format 1 or 2: a 52-byte header in front of safetensors data."""
    payload = safetensors.torch.save(tensors, metadata={"skdigits": description_text})
    header = struct.pack(
        "<8sIQ32s", b"SKDIGITS", version, len(payload), hashlib.sha256(payload).digest()
    )
    path.write_bytes(header + payload)


def _read_model_file(path):
    """Return the weights and the decoded description, read as any safetensors tool reads."""
    with safe_open(path, framework="pt") as file:
        tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
        return tensors, json.loads(file.metadata()["skdigits"])


def _rewrite_description(path, change):
    """Apply ``change`` to the JSON description in ``path``, keeping the checksum valid.

    This is what an attacker can do: the checksum detects damage, not intent.
    """
    tensors, description = _read_model_file(path)
    change(description)
    _write_model_file(path, tensors, json.dumps(description))


def _params(description):
    return description["classifier"]["params"]


def _attributes(description):
    return description["classifier"]["attributes"]


def _rewrite_tensors(path, change):
    """Apply ``change`` to the weights in ``path``, keeping the checksum valid."""
    tensors, description = _read_model_file(path)
    change(tensors)
    _write_model_file(path, tensors, json.dumps(description))


def _flip_byte(path, offset):
    """Change the byte at ``offset`` to another printable one, so JSON stays JSON."""
    data = bytearray(path.read_bytes())
    data[offset] = ord("0") if data[offset] != ord("0") else ord("1")
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
        "checksum": data.index(b'"sha256":"') + 10,
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
    tensors, description = _read_model_file(saved)
    newer = _persistence.FORMAT_VERSION + 1
    _write_model_file(saved, tensors, json.dumps(description), format_version=str(newer))
    with pytest.raises(ValueError, match=f"version {newer}.*upgrade skdigits"):
        load(saved)


def test_model_file_is_a_standard_safetensors_file_naming_its_format(fitted, saved):
    with safe_open(saved, framework="pt") as file:
        metadata = file.metadata()
        weights = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
    assert metadata["format"] == "skdigits-model"
    assert metadata["format_version"] == str(_persistence.FORMAT_VERSION)
    data = saved.read_bytes()
    tensor_data = data[8 + struct.unpack_from("<Q", data)[0] :]
    expected = hashlib.sha256(tensor_data + metadata["skdigits"].encode()).hexdigest()
    assert metadata["sha256"] == expected
    for name, tensor in fitted.net_.module_.state_dict().items():
        assert torch.equal(weights[name], tensor)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: _params(d).update(__class__=PROBE_MODULE), id="extra-param"),
        pytest.param(
            lambda d: _params(d).update(channels={"py/object": PROBE_MODULE}),
            id="obj",
        ),
        pytest.param(
            lambda d: _attributes(d)["classes_"].update(dtype=f"{PROBE_MODULE}.s"),
            id="dtype",
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
        pytest.param(lambda d: _params(d).update(device=f"{PROBE_MODULE}.s"), id="device"),
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
    _rewrite_description(saved, lambda d: _params(d).update({name: value}))
    with pytest.raises(ValueError, match=name):
        load(saved)


@pytest.mark.parametrize(
    "section, key",
    [
        ([], "classifier"),
        ([], "pipeline"),
        ([], "metadata"),
        (["classifier"], "params"),
        (["classifier"], "attributes"),
        (["classifier", "attributes"], "classes_"),
        (["classifier", "attributes"], "history_"),
    ],
)
def test_description_missing_a_key_is_rejected(section, key, saved):
    def remove(description):
        for name in section:
            description = description[name]
        del description[key]

    _rewrite_description(saved, remove)
    with pytest.raises(ValueError, match=f"lacks '{key}'"):
        load(saved)


def test_description_that_is_not_json_is_rejected(saved):
    state, _ = _read_model_file(saved)
    _write_model_file(saved, state, "{'params': None")
    with pytest.raises(ValueError, match="not valid JSON"):
        load(saved)


def test_weights_that_do_not_fit_the_parameters_are_rejected(saved):
    def wider(description):
        _params(description).update(channels=[4, 16])
        _attributes(description).update(channels_=[4, 16])

    _rewrite_description(saved, wider)
    with pytest.raises(ValueError, match="weights do not fit"):
        load(saved)


def test_deeper_network_round_trips_and_its_depth_must_fit_the_weights(small_digits, tmp_path):
    X, y = small_digits
    deep = CNNDigitClassifier(
        channels=(4, 8), convs_per_stage=(1, 2), max_epochs=2, device="cpu", random_state=0
    ).fit(X, y)
    path = tmp_path / "deep.skd"
    save(deep, path)
    loaded = load(path)
    assert loaded.convs_per_stage == (1, 2)
    assert_array_equal(loaded.predict_proba(X), deep.predict_proba(X))
    _rewrite_description(path, lambda d: _params(d).update(convs_per_stage=1))
    with pytest.raises(ValueError, match="weights do not fit"):
        load(path)


def test_format_1_classifier_file_written_by_0_1_0_still_loads(tmp_path):
    X = load_digits().data[:20]
    loaded, metadata = load(MODEL_FILES / "format1_classifier.skd", return_metadata=True)
    assert metadata == {}
    assert isinstance(loaded, CNNDigitClassifier)
    # Written before these parameters existed: trained as they describe, not as the defaults.
    assert (
        loaded.convs_per_stage,
        loaded.precision,
        loaded.warmup_fraction,
        loaded.beta_2,
    ) == (1, "float32", 0.3, 0.999)
    expected = np.load(MODEL_FILES / "format1_classifier.skd.proba.npy")
    assert_allclose(loaded.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_format_2_pipeline_file_written_by_0_1_0_still_loads_with_its_metadata():
    X = load_digits().data[:20]
    loaded, metadata = load(MODEL_FILES / "format2_pipeline.skd", return_metadata=True)
    assert metadata == {"written_by": "skdigits 0.1.0, format 2"}
    assert isinstance(loaded[0], DigitNormalizer)
    expected = np.load(MODEL_FILES / "format2_pipeline.skd.proba.npy")
    assert_allclose(loaded.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_legacy_file_whose_description_version_differs_from_its_header_is_rejected(fitted, saved):
    tensors, description = _read_model_file(saved)
    legacy = {"format": "skdigits-model", "format_version": 1, **description["classifier"]}
    _write_legacy_file(saved, tensors, json.dumps(legacy), version=2)
    with pytest.raises(ValueError, match="'format_version' should be 2"):
        load(saved)


def test_legacy_file_with_a_flipped_byte_is_detected_as_corruption(tmp_path):
    path = tmp_path / "model.skd"
    path.write_bytes((MODEL_FILES / "format1_classifier.skd").read_bytes())
    _flip_byte(path, 100)
    with pytest.raises(ValueError, match="corrupted or was modified"):
        load(path)


def test_save_function_and_save_method_write_the_same_model_file(fitted, tmp_path):
    save(fitted, tmp_path / "function.skd")
    fitted.save(tmp_path / "method.skd")
    # safetensors writes the header's keys in no fixed order, so the content is compared.
    files = [tmp_path / "function.skd", tmp_path / "method.skd"]
    (tensors, description), (other_tensors, other_description) = map(_read_model_file, files)
    assert description == other_description
    assert tensors.keys() == other_tensors.keys()
    assert all(torch.equal(tensors[name], other_tensors[name]) for name in tensors)


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


def test_brackets_inside_metadata_strings_do_not_count_as_nesting(fitted, tmp_path):
    metadata = {"note": "[{" * 100 + '\\"]', "quoted": '"[[[['}
    save(fitted, tmp_path / "model.skd", metadata=metadata)
    assert load(tmp_path / "model.skd", return_metadata=True)[1] == metadata


def test_metadata_nested_to_the_limit_round_trips(fitted, tmp_path):
    metadata = {"deep": _nested(31)}
    save(fitted, tmp_path / "model.skd", metadata=metadata)
    assert load(tmp_path / "model.skd", return_metadata=True)[1] == metadata


@pytest.mark.parametrize(
    "metadata, message",
    [
        pytest.param(["a", "list"], "'metadata' should be an object", id="not-an-object"),
        pytest.param({"deep": _nested(35)}, "nested more than 32 levels", id="too-deep"),
    ],
)
def test_stored_metadata_that_save_would_refuse_is_rejected(metadata, message, saved):
    _rewrite_description(saved, lambda d: d.update(metadata=metadata))
    with pytest.raises(ValueError, match=message):
        load(saved)


# Bounded loading: every crafted file below is refused, naming the problem, before anything
# large is allocated or built.


def test_symbolic_link_to_a_device_is_refused_without_reading_it(tmp_path):
    link = tmp_path / "model.skd"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a skdigits model file but a directory, device"):
        load(link)


def test_header_length_beyond_any_model_is_refused_before_reading_it(tmp_path):
    path = tmp_path / "model.skd"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(ValueError, match="not a skdigits model file"):
        load(path)


def test_safetensors_file_of_another_program_is_not_a_skdigits_model_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(safetensors.torch.save({"w": torch.zeros(3)}, metadata={"a": "b"}))
    with pytest.raises(ValueError, match="does not name the format"):
        load(path)


def test_description_padded_beyond_the_header_bound_is_refused(saved):
    tensors, description = _read_model_file(saved)
    padding = " " * (_persistence.MAX_HEADER_BYTES + 1)
    _write_model_file(saved, tensors, json.dumps(description) + padding)
    with pytest.raises(ValueError, match="header"):
        load(saved)


def test_header_declaring_more_data_than_the_file_holds_is_truncated(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load(saved)


def test_missing_format_version_is_rejected(saved):
    tensors, description = _read_model_file(saved)
    _write_model_file(saved, tensors, json.dumps(description), format_version="")
    with pytest.raises(ValueError, match="format version '' is not a number"):
        load(saved)


@pytest.mark.parametrize(
    "name, value",
    [
        pytest.param("channels", [1] * 1_000_000, id="a-million-stages"),
        pytest.param("channels", [8, 10**6], id="a-million-channels"),
        pytest.param("hidden_units", 10**9, id="a-billion-hidden-units"),
        pytest.param("convs_per_stage", 10**6, id="a-million-convolutions"),
        pytest.param("convs_per_stage", [1] * 1_000_000, id="a-million-stage-depths"),
        pytest.param("convs_per_stage", "deep", id="not-a-number"),
    ],
)
def test_network_beyond_the_bounds_is_refused_before_it_is_built(name, value, saved):
    _rewrite_description(saved, lambda d: _params(d).update({name: value}))
    with pytest.raises(ValueError, match=name):
        load(saved)


def test_ensemble_round_trips_and_a_file_with_fewer_networks_is_refused(small_digits, tmp_path):
    X, y = small_digits
    ensemble = tiny(n_networks=2, max_epochs=2).fit(X, y)
    loaded = _round_trip(ensemble, tmp_path)
    assert len(loaded.net_.module_.networks) == 2
    assert_array_equal(loaded.predict_proba(X), ensemble.predict_proba(X))
    path = tmp_path / "model.skd"
    _rewrite_description(path, lambda d: _params(d).update(n_networks=3))
    with pytest.raises(ValueError, match="weights do not fit"):
        load(path)
    _rewrite_description(path, lambda d: _params(d).update(n_networks=10**6))
    with pytest.raises(ValueError, match="n_networks"):
        load(path)


def test_an_ensemble_network_scaling_pixels_otherwise_is_refused(small_digits, tmp_path):
    X, y = small_digits
    path = tmp_path / "model.skd"
    tiny(n_networks=2, max_epochs=1).fit(X, y).save(path)
    _rewrite_tensors(path, lambda tensors: tensors["networks.1.pixel_span"].mul_(2))
    with pytest.raises(ValueError, match="'networks.1.pixel_low' and 'networks.1.pixel_span'"):
        load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        pytest.param(
            lambda a: a.update(image_shape_=[40000, 40000], n_features_in_=40000**2),
            "image_shape_.*exceeds the 1024 pixels",
            id="huge-frame",
        ),
        pytest.param(
            lambda a: a.update(image_shape_=[8, 9]), "does not hold 'n_features_in_'", id="shape"
        ),
        pytest.param(
            lambda a: a.update(feature_names_in_=["a", "b"]), "feature_names_in_", id="names"
        ),
        pytest.param(lambda a: a.update(n_iter_=10**6), "n_iter_", id="n-iter"),
        pytest.param(lambda a: a.update(pixel_range_=[0.0, 0.0]), "pixel_range_", id="span-0"),
        pytest.param(
            lambda a: a.update(pixel_range_=[0.0, 2.0]), "differ from 'pixel_range_'", id="range"
        ),
    ],
)
def test_attributes_that_disagree_with_each_other_or_the_weights_are_refused(
    change, message, saved
):
    _rewrite_description(saved, lambda d: change(_attributes(d)))
    with pytest.raises(ValueError, match=message):
        load(saved)


def test_strided_stem_on_images_too_small_for_it_is_refused(saved):
    def shrink(description):
        _params(description)["stem"] = "strided"
        _attributes(description).update(image_shape_=[1, 8], n_features_in_=8, stem_="strided")

    _rewrite_description(saved, shrink)
    with pytest.raises(ValueError, match="stem='strided' needs images of at least 4x4"):
        load(saved)


@pytest.mark.parametrize(
    "history, message",
    [
        pytest.param(_nested(900), "nested more than 40 levels", id="900-levels"),
        pytest.param([{"a": _nested(8)}], "'history_': is nested more than 6", id="8-levels"),
        pytest.param([{}] * 100_001, "more than 100,000", id="too-long"),
        pytest.param([1, 2], "list of objects", id="not-records"),
    ],
)
def test_history_too_deep_or_too_long_is_refused(history, message, saved):
    _rewrite_description(saved, lambda d: _attributes(d).update(history_=history))
    with pytest.raises(ValueError, match=message):
        load(saved)


@pytest.mark.parametrize(
    "classes, message",
    [
        pytest.param({"dtype": "|O", "values": ["a", 1]}, "of one kind", id="mixed-types"),
        pytest.param({"dtype": "<f8", "values": [0.5, 1.5]}, "continuous", id="continuous"),
        pytest.param({"dtype": "<i8", "values": [1, 0]}, "sorted and distinct", id="unsorted"),
        pytest.param({"dtype": "<i8", "values": [0, 0]}, "sorted and distinct", id="repeated"),
        pytest.param({"dtype": "<i8", "values": [0]}, "at least two", id="one-class"),
        pytest.param({"dtype": "<f8", "values": [float("nan"), 1.0]}, "NaN", id="nan"),
    ],
)
def test_class_labels_fit_would_reject_are_refused(classes, message, saved):
    _rewrite_description(saved, lambda d: _attributes(d).update(classes_=classes))
    with pytest.raises(ValueError, match=f"'classes_'.*{message}"):
        load(saved)


def test_more_classes_than_the_output_layer_has_are_refused(saved):
    classes = {"dtype": "<i8", "values": list(range(1000))}
    _rewrite_description(saved, lambda d: _attributes(d).update(classes_=classes))
    with pytest.raises(ValueError, match="weights do not fit"):
        load(saved)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(value, saved):
    def poison(tensors):
        tensors["head.4.weight"][0, 0] = value

    _rewrite_tensors(saved, poison)
    with pytest.raises(ValueError, match="'head.4.weight' holds NaN or infinite"):
        load(saved)


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.complex64, torch.float64])
def test_weights_of_another_dtype_are_refused(dtype, saved):
    try:
        safetensors.torch.save({"probe": torch.zeros(1, dtype=dtype)})
    except KeyError:
        pytest.skip(f"this safetensors cannot write {dtype} tensors to build the file")

    def convert(tensors):
        tensors["head.4.weight"] = tensors["head.4.weight"].to(dtype)

    _rewrite_tensors(saved, convert)
    with pytest.raises(ValueError, match=r"weights do not fit.*head\.4\.weight"):
        load(saved)


def test_negative_batch_norm_variances_are_refused(saved):
    def negate(tensors):
        name = next(name for name in tensors if name.endswith("running_var"))
        tensors[name] = -tensors[name] - 1

    _rewrite_tensors(saved, negate)
    with pytest.raises(ValueError, match="negative variances"):
        load(saved)


@pytest.mark.parametrize("name", ["lr", "dropout", "label_smoothing"])
def test_non_finite_hyperparameters_are_refused(name, saved):
    _rewrite_description(saved, lambda d: _params(d).update({name: float("nan")}))
    with pytest.raises(ValueError, match=name):
        load(saved)


# Saving: permissions, links, devices, temporary files.


def test_save_keeps_the_permission_bits_of_the_file_it_replaces(fitted, saved):
    saved.chmod(0o600)
    fitted.save(saved)
    assert saved.stat().st_mode & 0o777 == 0o600


def test_save_through_a_symbolic_link_writes_its_target_and_keeps_the_link(fitted, tmp_path):
    target = tmp_path / "models" / "digits.skd"
    target.parent.mkdir()
    link = tmp_path / "current.skd"
    link.symlink_to(target)
    fitted.save(link)
    assert link.is_symlink()
    assert isinstance(load(target), CNNDigitClassifier)
    assert sorted(os.listdir(target.parent)) == ["digits.skd"]


@pytest.mark.parametrize(
    "where, error",
    [
        pytest.param(lambda tmp: "/dev/null", ValueError, id="device"),
        pytest.param(lambda tmp: tmp, IsADirectoryError, id="directory"),
        pytest.param(lambda tmp: tmp / "missing" / "model.skd", FileNotFoundError, id="no-dir"),
    ],
)
def test_save_refuses_what_is_not_a_regular_file_path(where, error, fitted, tmp_path):
    with pytest.raises(error, match="cannot save a model"):
        fitted.save(where(tmp_path))
    with pytest.raises(error, match="cannot save a model"):
        check_model_path(where(tmp_path))


def test_save_removes_temporary_files_left_by_killed_saves(fitted, saved):
    stale = saved.parent / f".{saved.name}.0123456789abcdef.tmp"
    stale.write_bytes(b"half a model")
    fitted.save(saved)
    assert sorted(os.listdir(saved.parent)) == [saved.name]


@pytest.mark.skipif(sys.platform == "win32", reason="locks are POSIX flock")
def test_save_leaves_the_temporary_file_of_a_save_in_progress_alone(fitted, saved):
    import fcntl

    busy = saved.parent / f".{saved.name}.fedcba9876543210.tmp"
    with open(busy, "wb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        fitted.save(saved)
        assert busy.exists()


def test_save_leaves_other_files_that_look_temporary_alone(fitted, saved):
    others = [f".{saved.name}.notahexname.tmp", ".other.skd.0123456789abcdef.tmp"]
    for name in others:
        (saved.parent / name).write_bytes(b"")
    fitted.save(saved)
    assert sorted(os.listdir(saved.parent)) == sorted([saved.name, *others])


def _digits_of_side(X, side):
    """Return 8x8 digits blown up 4x (32x32) and cut to ``side`` x ``side`` pixels."""
    return np.kron(X.reshape(-1, 8, 8), np.ones((1, 4, 4)))[:, :side, :side]


@pytest.mark.parametrize(("side", "stem"), [(8, "full"), (16, "full"), (28, "strided")])
def test_fit_records_the_stem_auto_resolved_to(side, stem, small_digits):
    X, y = small_digits
    images = _digits_of_side(X[:100], side)
    clf = tiny(max_epochs=1).fit(images, y[:100])
    assert clf.stem_ == stem
    assert clf.net_.module_.features[0].conv.stride == ((2, 2) if stem == "strided" else (1, 1))


def test_state_without_a_stem_loads_by_the_rule_it_was_saved_under(small_digits):
    # skdigits 0.1 strided 16x16 images under stem="auto"; its files store no stem_.
    X, y = small_digits
    images = np.kron(X.reshape(-1, 8, 8), np.ones((1, 2, 2)))
    old = tiny(stem="strided").fit(images, y)
    tensors, state = old.to_state()
    state = json.loads(json.dumps(state))
    del state["attributes"]["stem_"]
    state["params"]["stem"] = "auto"
    loaded = CNNDigitClassifier.from_state(tensors, state)
    assert loaded.stem_ == "strided"
    assert_array_equal(loaded.predict_proba(images), old.predict_proba(images))
    # Fine-tuning it keeps its network, though a new fit would choose the full stem.
    loaded.set_params(warm_start=True, max_epochs=1).fit(images, y)
    assert loaded.stem_ == "strided"
    assert (
        CNNDigitClassifier(**loaded.get_params()).set_params(warm_start=False).fit(images, y).stem_
        == "full"
    )


WIDE, NARROW = (32, 32, 128), (16, 16, 64)


@pytest.mark.filterwarnings("ignore:the classifier did not learn")
@pytest.mark.parametrize(
    ("side", "large", "channels"),
    [
        (8, False, WIDE),
        (11, True, WIDE),
        (12, False, NARROW),
        (16, False, NARROW),
        (28, False, WIDE),
        (28, True, NARROW),
    ],
)
def test_fit_records_the_channels_auto_resolved_to(
    side, large, channels, small_digits, monkeypatch
):
    if large:  # 90 training images stand in for 10,000 or more
        monkeypatch.setattr(skdigits._classifier, "AUGMENT_BELOW", 50)
    X, y = small_digits
    images = _digits_of_side(X[:100], side)
    clf = tiny(channels="auto", max_epochs=1).fit(images, y[:100])
    assert clf.channels_ == channels
    convs = [m for m in clf.net_.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    assert tuple(conv.out_channels for conv in convs) == channels  # one conv per stage


def test_partial_fit_resolves_auto_channels_by_the_image_size_alone(small_digits):
    # The size of the whole data is unknown: a first part of 100 images is not small data.
    X, y = small_digits
    images = _digits_of_side(X[:100], 28)
    clf = tiny(channels="auto").partial_fit(images, y[:100], classes=np.arange(10))
    assert clf.channels_ == NARROW
    assert tiny(channels="auto").partial_fit(X, y, classes=np.arange(10)).channels_ == WIDE


@pytest.mark.filterwarnings("ignore:the classifier did not learn")
def test_channels_auto_widens_colour_images_as_grey_ones(small_digits):
    X, y = small_digits
    colour = np.repeat(X[:100].reshape(-1, 8, 8, 1), 3, axis=3)
    clf = tiny(channels="auto", max_epochs=1).fit(colour, y[:100])
    assert (clf.n_channels_, clf.channels_) == (3, WIDE)


def test_channels_auto_round_trips_with_the_channels_it_resolved_to(small_digits, tmp_path):
    X, y = small_digits
    clf = tiny(channels="auto", max_epochs=1).fit(X, y)
    clf.save(tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert (loaded.channels, loaded.channels_) == ("auto", WIDE)
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_state_without_channels_resolved_loads_its_channels_parameter(fitted, small_digits):
    # Files written before channels could be "auto" store the network's list only.
    X, _ = small_digits
    tensors, state = fitted.to_state()
    state = json.loads(json.dumps(state))
    del state["attributes"]["channels_"]
    loaded = CNNDigitClassifier.from_state(tensors, state)
    assert loaded.channels_ == tuple(fitted.channels) == (4, 8)
    assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    state["params"]["channels"] = "auto"
    with pytest.raises(ValueError, match="lacks 'channels_'"):
        CNNDigitClassifier.from_state(tensors, state)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("attributes", [4, 0], "'channels_': channels must be"),
        ("attributes", [4, 16], r"'channels_' \[4, 16\] disagrees with 'channels' \[4, 8\]"),
        ("params", "wide", "'channels' should be 'auto' or a list of ints"),
    ],
)
def test_stored_channels_that_do_not_describe_the_network_are_rejected(
    fitted, where, value, message
):
    tensors, state = fitted.to_state()
    state = json.loads(json.dumps(state))
    state[where]["channels_" if where == "attributes" else "channels"] = value
    with pytest.raises(ValueError, match=message):
        CNNDigitClassifier.from_state(tensors, state)


def test_stored_stem_that_is_not_a_stem_is_rejected(fitted):
    tensors, state = fitted.to_state()
    state["attributes"]["stem_"] = "wide"
    with pytest.raises(ValueError, match="stem_"):
        CNNDigitClassifier.from_state(tensors, state)


def test_stored_stem_that_disagrees_with_the_stem_parameter_is_rejected(saved):
    _rewrite_description(saved, lambda d: _params(d).update(stem="strided"))
    with pytest.raises(ValueError, match="'stem_' 'full' disagrees with 'stem' 'strided'"):
        load(saved)
