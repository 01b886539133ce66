"""The ``skdigits`` command, run through ``main`` and once as ``python -m skdigits``."""

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import skdigits
from skdigits.cli import main

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


def test_train_writes_a_pipeline_with_the_given_options(model_path):
    model = skdigits.load(model_path)

    assert isinstance(model[0], skdigits.DigitNormalizer)
    assert model[0].image_shape_ == (8, 8)
    assert tuple(model[-1].channels) == (4, 8)
    assert model[-1].max_epochs == 2


@pytest.mark.parametrize(("given", "convs"), [(["2"], 2), (["1", "2"], (1, 2))])
def test_train_convs_per_stage_option_takes_one_number_for_all_or_one_per_stage(
    given, convs, tmp_path
):
    path = tmp_path / "deep.skd"
    main(["train", *TINY, "--quiet", "--convs-per-stage", *given, "--out", str(path)])

    clf = skdigits.load(path)[-1]
    assert clf.convs_per_stage == convs
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in clf.net_.module_.modules())
    assert n_convs == (4 if convs == 2 else 3)


def test_train_convs_per_stage_that_do_not_fit_the_stages_fail_in_one_line(tmp_path, capsys):
    args = ["train", *TINY, "--convs-per-stage", "1", "2", "3", "--out", str(tmp_path / "m.skd")]
    status = main(args)

    assert_one_line_error(capsys, status, "one int per stage (2 here, as in channels)")
    assert not (tmp_path / "m.skd").exists()


def test_train_n_networks_option_trains_an_ensemble(tmp_path):
    path = tmp_path / "ensemble.skd"
    main(["train", *TINY, "--quiet", "--n-networks", "2", "--out", str(path)])

    clf = skdigits.load(path)[-1]
    assert clf.n_networks == 2
    assert len(clf.net_.module_.networks) == 2


def test_train_n_networks_out_of_range_fails_in_one_line(tmp_path, capsys):
    status = main(["train", *TINY, "--n-networks", "0", "--out", str(tmp_path / "m.skd")])

    assert_one_line_error(capsys, status, "'n_networks' parameter")
    assert not (tmp_path / "m.skd").exists()


def test_train_output_has_no_colour_codes_when_not_a_terminal(trained):
    _, printed = trained

    assert "\x1b[" not in printed


def test_train_quiet_prints_no_epoch_table(tmp_path, capsys):
    main(["train", *TINY, "--quiet", "--out", str(tmp_path / "model.skd")])

    assert "train_loss" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "out, message",
    [
        pytest.param(lambda tmp: tmp / "missing" / "model.skd", "does not exist", id="no-folder"),
        pytest.param(lambda tmp: tmp, "is a directory", id="directory"),
        pytest.param(lambda tmp: "/dev/null", "not a regular file", id="device"),
    ],
)
def test_train_to_a_path_it_cannot_save_to_fails_before_training(out, message, tmp_path, capsys):
    status = main(["train", *TINY, "--out", str(out(tmp_path))])

    assert_one_line_error(capsys, status, message)
    assert "best epoch" not in capsys.readouterr().out


def test_train_threads_option_sets_torch_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        main(["train", *TINY, "--quiet", "--threads", "1", "--out", str(tmp_path / "m.skd")])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_evaluate_prints_accuracy_on_the_images_train_held_out(trained, capsys):
    model_path, train_output = trained
    trained_accuracy = train_output.split("test accuracy: ")[1].split()[0]

    status = main(["evaluate", str(model_path)])

    printed = capsys.readouterr().out
    assert status == 0
    assert f"accuracy: {trained_accuracy} on 360 images held out when" in printed
    assert "precision" in printed and "recall" in printed


def test_evaluate_uses_the_split_recorded_in_the_model_file(tmp_path, capsys):
    path = str(tmp_path / "model.skd")
    main(["train", *TINY, "--quiet", "--random-state", "3", "--test-size", "0.1", "--out", path])
    trained_accuracy = capsys.readouterr().out.split("test accuracy: ")[1].split()[0]

    main(["evaluate", path])

    assert f"accuracy: {trained_accuracy} on 180 images held out" in capsys.readouterr().out


def write_folder(root, digits, n=100, name=str, scale=1, sizes=None):
    """Write ``n`` bundled digits as dark-on-light PNGs in class sub-folders; return the root."""
    X, y = digits
    for i in range(n):
        pixels = np.round(255 - X[i].reshape(8, 8) / 16 * 255).astype(np.uint8)
        image = Image.fromarray(np.pad(pixels, 3, constant_values=255))
        size = scale * 14 if sizes is None else sizes[i % len(sizes)]
        folder = root / name(y[i])
        folder.mkdir(parents=True, exist_ok=True)
        image.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{i}.png")
    return root


def test_train_and_evaluate_on_an_image_folder_of_mixed_sizes(tmp_path, digits, capsys):
    folder = str(write_folder(tmp_path / "images", digits, sizes=(14, 30, 57)))
    model = str(tmp_path / "model.skd")

    assert main(["train", *TINY, "--quiet", "--dataset", folder, "--out", model]) == 0
    assert main(["evaluate", model, "--dataset", folder]) == 0

    printed = capsys.readouterr().out
    assert "test accuracy: " in printed and "on 20 held-out images" in printed
    assert "on 20 images held out when" in printed
    assert skdigits.load(model)[0].image_shape_ == (28, 28)


def test_evaluate_scores_every_image_of_another_folder(model_path, tmp_path, digits, capsys):
    folder = str(write_folder(tmp_path / "new", digits, n=50))

    status = main(["evaluate", str(model_path), "--dataset", folder])

    assert status == 0
    assert "on 50 images\n" in capsys.readouterr().out


def test_integer_folder_names_score_against_integer_labels(model_path, tmp_path, digits, capsys):
    folder = str(write_folder(tmp_path / "new", digits, n=50))
    model = skdigits.load(model_path)
    paths, y = skdigits.datasets.list_image_folder(folder)

    main(["evaluate", str(model_path), "--dataset", folder])

    expected = np.mean(model.predict(paths) == y)
    assert f"accuracy: {expected:.4f} on 50 images" in capsys.readouterr().out


def test_folder_with_one_class_is_an_error_before_training(tmp_path, digits, capsys):
    X, y = digits
    folder = write_folder(tmp_path / "one", (X[y == 3], y[y == 3]), n=10)

    status = main(["train", *TINY, "--dataset", str(folder), "--out", str(tmp_path / "m.skd")])

    assert_one_line_error(capsys, status, "one class only")
    assert "train_loss" not in capsys.readouterr().out


def test_fine_tuning_starts_from_the_model_weights(model_path, tmp_path, digits, capsys):
    folder = str(write_folder(tmp_path / "own", digits))
    out = str(tmp_path / "tuned.skd")
    base = skdigits.load(model_path)
    paths, _ = skdigits.datasets.list_image_folder(folder)

    status = main(
        ["train", "--dataset", folder, "--from", str(model_path), "--out", out, "--quiet"]
        + ["--max-epochs", "1", "--lr", "1e-12", "--test-size", "0"]
    )

    assert status == 0
    tuned = skdigits.load(out)
    assert tuned[0].get_params() == base[0].get_params()
    # The weights barely move at this learning rate; batch norm's statistics do, a little.
    # Calibration fits a new temperature on the new images: compared at the old one.
    tuned[-1].temperature_ = base[-1].temperature_
    assert np.abs(tuned.predict_proba(paths) - base.predict_proba(paths)).mean() < 0.01
    assert np.mean(tuned.predict(paths) == base.predict(paths)) >= 0.95


def test_fine_tuning_on_new_classes_trains_a_new_output_layer(model_path, tmp_path, digits):
    folder = str(write_folder(tmp_path / "own", digits, name=lambda label: "ab"[label % 2]))
    out = str(tmp_path / "tuned.skd")

    status = main(
        ["train", "--dataset", folder, "--from", str(model_path), "--out", out, "--quiet"]
        + ["--max-epochs", "2"]
    )

    assert status == 0
    assert list(skdigits.load(out).classes_) == ["a", "b"]


def test_fine_tuning_the_pretrained_model(tmp_path, digits, capsys):
    folder = str(write_folder(tmp_path / "own", digits, n=60, scale=3))
    out = str(tmp_path / "tuned.skd")

    status = main(
        ["train", "--dataset", folder, "--from", "pretrained", "--out", out]
        + ["--max-epochs", "1", "--test-size", "0", "--quiet"]
    )

    assert status == 0
    tuned = skdigits.load(out)
    assert tuned[-1].channels == skdigits.load_pretrained()[-1].channels


def test_predict_prints_path_label_and_probability_per_image(model_path, tmp_path, digits, capsys):
    paths = write_digit_pngs(tmp_path, digits)

    status = main(["predict", *map(str, paths), "--model", str(model_path)])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [line.split("\t")[0] for line in lines] == list(map(str, paths))
    model = skdigits.load(model_path)
    labels = [int(line.split("\t")[1]) for line in lines]
    np.testing.assert_array_equal(labels, model.predict([str(path) for path in paths]))
    for line in lines:
        assert 0 < float(line.split("\t")[2]) <= 1


def test_predict_reads_dark_on_light_like_light_on_dark_without_options(
    model_path, tmp_path, digits, capsys
):
    light = write_digit_pngs(tmp_path / "light", digits)
    dark = write_digit_pngs(tmp_path / "dark", digits, invert=True)
    main(["predict", *map(str, light), "--model", str(model_path)])
    expected = [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()]

    main(["predict", *map(str, dark), "--model", str(model_path)])
    auto = [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()]
    main(["predict", "--invert", *map(str, dark), "--model", str(model_path)])

    assert auto == expected
    assert [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()] == expected


SCANS = Path(__file__).parent / "data" / "scans"


def test_predict_without_a_model_uses_the_pretrained_one_on_scans(capsys):
    paths = sorted(SCANS.glob("digit*"))

    status = main(["predict", *map(str, paths)])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    truth = [path.name[len("digit")] for path in paths]
    correct = sum(line.split("\t")[1] == label for line, label in zip(lines, truth, strict=True))
    assert correct >= 9


def test_predict_number_reads_the_digits_left_to_right(capsys):
    (path,) = SCANS.glob("number_*.png")

    status = main(["predict", "--number", str(path)])

    name, label, confidence = capsys.readouterr().out.strip().split("\t")
    assert status == 0
    assert label == path.stem.split("_")[1]
    assert 0 < float(confidence) <= 1


def test_predict_given_a_model_file_as_image_says_to_use_model(model_path, capsys):
    status = main(["predict", str(model_path)])

    assert_one_line_error(capsys, status, "pass it with --model")


@pytest.mark.parametrize(
    "damage, message",
    [
        pytest.param(lambda data: data[: len(data) // 2], "truncated", id="truncated"),
        pytest.param(lambda data: data[:-1] + b"x", "checksum mismatch", id="flipped"),
        pytest.param(lambda data: b"\x80" * 100, "not a skdigits model file", id="garbage"),
    ],
)
def test_predict_with_a_damaged_model_file_is_a_one_line_error(
    damage, message, model_path, tmp_path, digits, capsys
):
    damaged = tmp_path / "damaged.skd"
    damaged.write_bytes(damage(model_path.read_bytes()))
    image = write_digit_pngs(tmp_path / "images", digits)[0]

    status = main(["predict", "--model", str(damaged), str(image)])

    assert_one_line_error(capsys, status, message)


def test_predict_page_without_ink_is_an_error(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((40, 40), 200, dtype=np.uint8)).save(blank)

    status = main(["predict", str(blank)])

    assert_one_line_error(capsys, status, "blank.png")


def test_benchmark_prints_a_row_per_model(capsys):
    status = main(["benchmark", *TINY, "--cv", "2", "--n-samples", "200"])

    printed = capsys.readouterr().out
    assert status == 0
    assert "2-fold cross-validation on 200 images of digits" in printed
    for model in ("CNNDigitClassifier", "logistic regression", "RBF SVC", "MLP"):
        assert model in printed


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


@pytest.mark.parametrize("content", [b"", b"not an image", b"\x89PNG\r\n\x1a\n\0\0"])
def test_unreadable_empty_or_truncated_image_is_an_error(model_path, tmp_path, capsys, content):
    image = tmp_path / "digit.png"
    image.write_bytes(content)

    status = main(["predict", str(image), "--model", str(model_path)])

    assert_one_line_error(capsys, status, "cannot read the image file")


def test_python_m_skdigits_reports_errors_with_exit_status_1(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skdigits", "predict", "x.png", "--model", str(tmp_path / "m.skd")],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("skdigits: error: ")
    assert "Traceback" not in result.stderr


def test_decompression_bomb_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from PIL import Image as PILImage

    path = tmp_path / "huge.png"
    PILImage.fromarray(np.full((40, 40), 200, dtype=np.uint8)).save(path)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # 1,600 pixels is "too large" now

    status = main(["predict", str(path)])

    assert_one_line_error(capsys, status, "huge.png: it is too large to be a digit image")


def test_train_preset_accurate_trains_the_accuracy_recipe_and_options_override_it(tmp_path):
    path = tmp_path / "accurate.skd"
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["train", "--preset", "accurate", "--max-epochs", "1", "--out", str(path)])
    assert status == 0
    clf = skdigits.load(path)[-1]
    recipe = skdigits.PRESETS["accurate"]
    assert tuple(clf.channels) == recipe["channels"]
    assert clf.convs_per_stage == recipe["convs_per_stage"]
    assert clf.hidden_units == recipe["hidden_units"]
    assert clf.n_networks == recipe["n_networks"] == len(clf.net_.module_.networks)
    assert clf.precision == recipe["precision"]
    assert clf.validation_fraction == recipe["validation_fraction"]
    assert (clf.stem, clf.stem_, clf.augment) == (recipe["stem"], "full", recipe["augment"])
    assert clf.max_epochs == 1 != recipe["max_epochs"]
