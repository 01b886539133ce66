"""Colour images: RGB and RGBA arrays in both layouts train, predict, save and export."""

import numpy as np
import pytest
from conftest import tiny
from numpy.testing import assert_array_equal
from PIL import Image
from sklearn.model_selection import train_test_split

import skdigits
from skdigits import CNNDigitClassifier, ImageTransformer
from skdigits.cli import main
from skdigits.datasets import load_image, load_image_folder


def colour_digits(X, seed=0):
    """Return the 8x8 digits drawn in a random ink colour on a random paper colour each.

    Shape (n, 8, 8, 3), channels last, floats 0..1.
    """
    rng = np.random.default_rng(seed)
    ink, paper = rng.random((2, len(X), 1, 1, 3))
    strokes = (X / 16).reshape(-1, 8, 8, 1)
    return (paper * (1 - strokes) + ink * strokes).astype(np.float32)


@pytest.fixture(scope="module")
def colour(digits):
    X, y = digits
    return colour_digits(X[:400]), y[:400]


@pytest.fixture(scope="module")
def fitted(colour):
    X, y = colour
    return tiny(max_epochs=4).fit(X, y)


def test_channels_last_colour_images_learn_three_channels(fitted):
    assert fitted.n_channels_ == 3
    assert fitted.image_shape_ == (8, 8)
    assert fitted.n_features_in_ == 3 * 64


def test_channels_first_images_predict_as_channels_last_ones(fitted, colour):
    X, _ = colour
    assert_array_equal(fitted.predict_proba(X.transpose(0, 3, 1, 2)), fitted.predict_proba(X))


def test_grey_images_to_a_colour_model_are_an_error_naming_the_channels(fitted, colour):
    X, _ = colour
    with pytest.raises(ValueError, match=r"1 channel\(s\).*3 channel\(s\)"):
        fitted.predict(X[..., 0])


def test_rgba_images_train_on_four_channels(colour):
    X, y = colour
    rgba = np.concatenate([X, np.ones_like(X[..., :1])], axis=-1)
    clf = tiny(max_epochs=2).fit(rgba, y)
    assert clf.n_channels_ == 4
    assert clf.predict(rgba).shape == y.shape


def test_flat_rows_of_colour_planes_take_the_shape_from_image_shape(fitted, colour):
    X, y = colour
    rows = X.transpose(0, 3, 1, 2).reshape(len(X), -1)
    clf = tiny(image_shape=(8, 8), max_epochs=4).fit(rows, y)
    assert (clf.n_channels_, clf.image_shape_) == (3, (8, 8))
    assert_array_equal(clf.predict_proba(rows), fitted.predict_proba(X))


def test_five_channels_are_an_error_naming_the_shape(colour):
    X, y = colour
    with pytest.raises(ValueError, match="1, 3 \\(RGB\\) or 4 \\(RGBA\\) channels"):
        tiny().fit(np.zeros((len(X), 8, 8, 5)), y)


def test_colour_model_round_trips_through_a_model_file(fitted, colour, tmp_path):
    X, _ = colour
    fitted.save(tmp_path / "colour.skd")
    # On the device it was trained on: a CPU and a GPU agree closely, not bit for bit.
    loaded = skdigits.load(tmp_path / "colour.skd", device=fitted.device)
    assert loaded.n_channels_ == 3
    assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_image_transformer_keeps_the_channels(colour):
    X, _ = colour
    transformer = ImageTransformer().fit(X)
    images = transformer.transform(X)
    assert images.shape == (len(X), 3, 8, 8)
    assert_array_equal(images, transformer.transform(X.transpose(0, 3, 1, 2)))


def test_held_out_colour_digits_reach_90_percent(digits):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(
        colour_digits(X), y, test_size=0.25, stratify=y, random_state=0
    )
    clf = CNNDigitClassifier(random_state=0, device="cpu").fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.9


def test_grey_models_stay_single_channel(digits):
    X, y = digits
    assert tiny(max_epochs=1).fit(X[:200], y[:200]).n_channels_ == 1


# Image files keep their colour for colour models.


def write_colour_pngs(folder, images, labels):
    """Write uint8 RGB images as PNG files in one sub-folder per label; return the paths."""
    paths = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        paths.append(folder / str(label) / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def test_load_image_keeps_the_colour_when_asked(colour, tmp_path):
    X, y = colour
    pixels = np.round(X[0] * 255).astype(np.uint8)
    (path,) = write_colour_pngs(tmp_path, pixels[None], y[:1])
    assert_array_equal(load_image(path, colour=True), pixels)
    assert load_image(path).shape == (8, 8)


def test_grey_files_read_in_colour_give_three_equal_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(path)
    image = load_image(path, colour=True)
    assert image.shape == (8, 8, 3)
    assert_array_equal(image[..., 0], image[..., 2])


def test_colour_strokes_on_a_transparent_canvas_are_laid_on_paper(tmp_path):
    canvas = np.zeros((8, 8, 4), dtype=np.uint8)
    canvas[2:6, 3, :] = (200, 30, 30, 255)  # a red stroke; the rest transparent black
    path = tmp_path / "drawing.png"
    Image.fromarray(canvas, mode="RGBA").save(path)
    image = load_image(path, colour=True)
    assert_array_equal(image[0, 0], [255, 255, 255])
    assert_array_equal(image[3, 3], [200, 30, 30])


def test_load_image_folder_reads_colour_images(colour, tmp_path):
    X, y = colour
    pixels = np.round(X[:6] * 255).astype(np.uint8)
    write_colour_pngs(tmp_path, pixels, y[:6])
    images, labels = load_image_folder(tmp_path, colour=True)
    assert images.shape == (6, 8, 8, 3)
    assert sorted(labels.tolist()) == sorted(y[:6].tolist())


def test_cli_predict_reads_files_in_colour_for_a_colour_model(colour, tmp_path, capsys):
    X, y = colour
    pixels = np.round(X * 255).astype(np.uint8)
    clf = tiny(max_epochs=4).fit(pixels, y)
    clf.save(tmp_path / "colour.skd")
    paths = write_colour_pngs(tmp_path / "images", pixels[:8], y[:8])

    status = main(["predict", "--model", str(tmp_path / "colour.skd"), *map(str, paths)])

    assert status == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [int(label) for _, label, _ in printed] == clf.predict(pixels[:8]).tolist()
