"""The ``skdigits`` command, run through ``main`` and once as ``python -m skdigits``."""

import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import skdigits
from skdigits.cli import main, match_pixel_range

# A tiny network and few epochs: these tests check the command, not the accuracy.
TINY = ["--max-epochs", "2", "--channels", "4", "8", "--batch-size", "64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Return the model file ``skdigits train`` writes on the bundled digits, and its output."""
    path = tmp_path_factory.mktemp("model") / "digits-model.skd"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        status = main(["train", *TINY, "--out", str(path)])
    assert status == 0
    return path, printed.getvalue()


@pytest.fixture
def model_path(trained):
    return trained[0]


def write_digit_pngs(folder, digits, invert=False):
    """Write the first bundled 8x8 digits as 0..255 PNG files; return their paths."""
    X, y = digits
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(4):
        pixels = np.round(X[i].reshape(8, 8) / 16 * 255).astype(np.uint8)
        paths.append(folder / f"digit{i}_{y[i]}.png")
        Image.fromarray(255 - pixels if invert else pixels).save(paths[-1])
    return paths


def assert_one_line_error(capsys, status, expected):
    """Assert exit status 1 and a single ``skdigits: error:`` line containing ``expected``."""
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("skdigits: error: ")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


def test_train_prints_epochs_best_epoch_accuracy_and_fit_time(trained):
    _, printed = trained

    assert "train_loss" in printed and "valid_acc" in printed and "valid_loss" in printed
    assert "best epoch: " in printed
    assert "test accuracy: " in printed and "on 360 held-out images" in printed
    assert "fit time: " in printed


def test_train_writes_a_model_file_with_the_given_options(model_path):
    clf = skdigits.load(model_path)

    assert tuple(clf.channels) == (4, 8)
    assert clf.max_epochs == 2
    assert clf.image_shape_ == (8, 8)


def test_train_quiet_prints_no_epoch_table(tmp_path, capsys):
    main(["train", *TINY, "--quiet", "--out", str(tmp_path / "model.skd")])

    assert "train_loss" not in capsys.readouterr().out


def test_train_into_a_missing_folder_fails_before_training(tmp_path, capsys):
    status = main(["train", *TINY, "--out", str(tmp_path / "missing" / "model.skd")])

    assert_one_line_error(capsys, status, "does not exist")
    assert "best epoch" not in capsys.readouterr().out


def test_evaluate_prints_accuracy_on_the_split_train_held_out(trained, capsys):
    model_path, train_output = trained
    trained_accuracy = train_output.split("test accuracy: ")[1].split()[0]

    status = main(["evaluate", str(model_path)])

    printed = capsys.readouterr().out
    assert status == 0
    assert f"accuracy: {trained_accuracy} on 360 held-out images" in printed
    assert "precision" in printed and "recall" in printed


def test_evaluate_splits_with_the_seed_the_model_was_trained_with(tmp_path, capsys):
    path = str(tmp_path / "model.skd")
    main(["train", *TINY, "--quiet", "--random-state", "3", "--out", path])
    trained_accuracy = capsys.readouterr().out.split("test accuracy: ")[1].split()[0]

    main(["evaluate", path])

    assert f"accuracy: {trained_accuracy} on 360 held-out images" in capsys.readouterr().out


def test_train_and_evaluate_on_an_image_folder(tmp_path, digits, capsys):
    X, y = digits
    for i in range(100):
        pixels = np.round(X[i].reshape(8, 8) / 16 * 255).astype(np.uint8)
        (tmp_path / "images" / f"class{y[i]}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "images" / f"class{y[i]}" / f"{i}.png")
    folder, model = str(tmp_path / "images"), str(tmp_path / "model.skd")

    assert main(["train", *TINY, "--quiet", "--dataset", folder, "--out", model]) == 0
    assert main(["evaluate", model, "--dataset", folder, "--test-size", "1"]) == 0

    printed = capsys.readouterr().out
    assert "test accuracy: " in printed and "on 20 held-out images" in printed
    assert "on 100 images" in printed and "class9" in printed


def test_evaluate_with_test_size_1_uses_all_images(model_path, capsys):
    main(["evaluate", str(model_path), "--test-size", "1"])

    assert "on 1797 images\n" in capsys.readouterr().out


def test_evaluate_saves_a_confusion_matrix_png(model_path, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "confusion.png"

    status = main(["evaluate", str(model_path), "--confusion-matrix", str(png)])

    assert status == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_predict_prints_path_label_and_probability_per_image(model_path, tmp_path, digits, capsys):
    paths = write_digit_pngs(tmp_path, digits)

    status = main(["predict", str(model_path), *map(str, paths)])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [line.split("\t")[0] for line in lines] == list(map(str, paths))
    clf = skdigits.load(model_path)
    for line in lines:
        _, label, probability = line.split("\t")
        assert int(label) in clf.classes_
        assert 0 < float(probability) <= 1


def test_predict_gives_the_labels_of_the_pixels_the_files_were_written_from(
    model_path, tmp_path, digits, capsys
):
    X, _ = digits
    paths = write_digit_pngs(tmp_path, digits)
    clf = skdigits.load(model_path)

    main(["predict", str(model_path), *map(str, paths)])

    labels = [int(line.split("\t")[1]) for line in capsys.readouterr().out.splitlines()]
    np.testing.assert_array_equal(labels, clf.predict(X[: len(paths)]))


def test_predict_invert_reads_dark_on_light_images_like_light_on_dark(
    model_path, tmp_path, digits, capsys
):
    light = write_digit_pngs(tmp_path / "light", digits)
    dark = write_digit_pngs(tmp_path / "dark", digits, invert=True)
    main(["predict", str(model_path), *map(str, light)])
    expected = [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()]

    main(["predict", "--invert", str(model_path), *map(str, dark)])

    assert [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()] == expected


def test_benchmark_prints_a_row_per_model(capsys):
    status = main(["benchmark", *TINY, "--cv", "2", "--n-samples", "200"])

    printed = capsys.readouterr().out
    assert status == 0
    assert "2-fold cross-validation on 200 images of digits" in printed
    for model in ("CNNDigitClassifier", "logistic regression", "RBF SVC", "MLP"):
        assert model in printed


def test_match_pixel_range_maps_0_255_onto_the_learned_range():
    pixels = match_pixel_range(np.array([0, 255], dtype=np.uint8), (-1.0, 2.0))

    np.testing.assert_allclose(pixels, [-1.0, 1.0])
    assert pixels.dtype == np.float32


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "benchmark"])
def test_each_command_has_help(command, capsys):
    status = main([command, "--help"])

    assert status == 0
    assert f"usage: skdigits {command}" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys):
    status = main([])

    assert status == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_missing_model_file_is_an_error(tmp_path, capsys):
    status = main(["evaluate", str(tmp_path / "missing.skd")])

    assert_one_line_error(capsys, status, "missing.skd")


def test_invalid_model_file_is_an_error(tmp_path, capsys):
    path = tmp_path / "model.skd"
    path.write_bytes(b"not a model")

    status = main(["evaluate", str(path)])

    assert_one_line_error(capsys, status, "model.skd")


def test_unknown_dataset_is_an_error(capsys):
    status = main(["train", *TINY, "--dataset", "no-such-dataset"])

    assert_one_line_error(capsys, status, "unknown dataset 'no-such-dataset'")


def test_missing_mnist_files_are_an_error(tmp_path, capsys):
    status = main(["benchmark", "--dataset", "mnist", "--data-home", str(tmp_path)])

    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("skdigits: error: MNIST 'train' files not found")
    assert "Traceback" not in err


def test_unreadable_image_is_an_error(model_path, tmp_path, capsys):
    image = tmp_path / "digit.png"
    image.write_text("not an image")

    status = main(["predict", str(model_path), str(image)])

    assert_one_line_error(capsys, status, "cannot read the image file")


def test_python_m_skdigits_reports_errors_with_exit_status_1(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skdigits", "predict", str(tmp_path / "missing.skd"), "x.png"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("skdigits: error: ")
    assert "Traceback" not in result.stderr
