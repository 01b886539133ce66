"""ONNX export through skl2onnx: onnxruntime predicts as the fitted model does."""

import numpy as np
import pytest
from conftest import tiny
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline

from skdigits import CNNDigitClassifier, DigitNormalizer, ImageTransformer

skl2onnx = pytest.importorskip("skl2onnx", reason="needs the onnx extra: skdigits[onnx]")
onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra: skdigits[onnx]")
import skdigits.onnx  # noqa: E402, F401  (registers the converters)


def run_onnx(model, X, sample=None):
    """Return the labels and probabilities onnxruntime gives for ``X``."""
    classifier = model[-1] if hasattr(model, "steps") else model
    onx = skl2onnx.to_onnx(
        model, (X if sample is None else sample)[:1], options={id(classifier): {"zipmap": False}}
    )
    session = onnxruntime.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def assert_same_predictions(model, X):
    labels, proba = run_onnx(model, X)
    assert_array_equal(labels, model.predict(X))
    assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_classifier_with_int_labels_predicts_alike_in_onnxruntime(dtype, small_digits):
    X, y = small_digits
    clf = tiny(channels=(8, 16), max_epochs=4).fit(X.astype(dtype), y)
    assert_same_predictions(clf, X.astype(dtype))


def test_classifier_with_string_labels_predicts_alike_in_onnxruntime(small_digits):
    X, y = small_digits
    labels = np.array(["zero", "one", "two", "three", "four"] * 2)[y]
    clf = tiny(max_epochs=4).fit(X, labels)
    assert_same_predictions(clf, X.astype(np.float32))


def test_image_shaped_input_and_a_strided_network_predict_alike(digits):
    X, y = digits
    # 8x8 digits enlarged to 24x24: a strided stem, pooling and uneven adaptive pooling.
    images = np.kron(X[:400].reshape(-1, 8, 8), np.ones((3, 3))).astype(np.float32)
    clf = CNNDigitClassifier(max_epochs=3, device="cpu", random_state=0).fit(images, y[:400])
    assert_same_predictions(clf, images)


def test_network_with_several_convolutions_per_stage_predicts_alike(small_digits):
    X, y = small_digits
    clf = tiny(channels=(4, 8), convs_per_stage=(2, 3), stem="full", max_epochs=3).fit(X, y)
    assert_same_predictions(clf, X.astype(np.float32))


def test_ensemble_of_networks_predicts_alike(small_digits):
    X, y = small_digits
    clf = tiny(channels=(4, 8), n_networks=3, max_epochs=3).fit(X, y)
    assert len(clf.net_.module_.networks) == 3
    assert_same_predictions(clf, X.astype(np.float32))


def test_non_square_rows_predict_alike(small_digits):
    X, y = small_digits
    clf = tiny(image_shape=(4, 16), max_epochs=3).fit(X, y)
    assert_same_predictions(clf, X.astype(np.float32))


def test_pipeline_with_image_transformer_predicts_alike(small_digits):
    X, y = small_digits
    pipeline = make_pipeline(ImageTransformer(), tiny(max_epochs=4)).fit(X, y)
    assert_same_predictions(pipeline, X.astype(np.float32))


def test_image_transformer_alone_gives_the_same_images(small_digits):
    X, _ = small_digits
    transformer = ImageTransformer().fit(X)
    onx = skl2onnx.to_onnx(transformer, X[:1].astype(np.float32))
    session = onnxruntime.InferenceSession(onx.SerializeToString())
    (images,) = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})
    assert_allclose(images, transformer.transform(X), rtol=0, atol=1e-6)


def test_digit_normalizer_cannot_be_converted_and_says_what_to_do(small_digits):
    X, y = small_digits
    pipeline = make_pipeline(DigitNormalizer(), tiny()).fit(X, y)
    with pytest.raises(NotImplementedError, match="DigitNormalizer cannot be converted"):
        skl2onnx.to_onnx(pipeline, X[:1].astype(np.float32))


@pytest.mark.parametrize("layout", ["channels-last", "channels-first"])
def test_colour_images_predict_alike_in_onnxruntime(layout, digits):
    X, y = digits
    rng = np.random.default_rng(0)
    ink, paper = rng.random((2, 300, 1, 1, 3))
    strokes = (X[:300] / 16).reshape(-1, 8, 8, 1)
    images = (paper * (1 - strokes) + ink * strokes).astype(np.float32)
    if layout == "channels-first":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    clf = tiny(max_epochs=3).fit(images, y[:300])
    assert_same_predictions(clf, images)
