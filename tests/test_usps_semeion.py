"""The loaders of the two 16x16 handwriting collections, USPS and Semeion, on files made here."""

import bz2

import numpy as np
import pytest
import torchvision.datasets

import skdigits
import skdigits.datasets
from skdigits.cli import main
from skdigits.datasets import load_dataset, load_semeion, load_usps

RNG = np.random.default_rng(0)
# Three USPS-style images on the file's -1..1 scale, written with four decimals.
USPS_IMAGES = np.round(RNG.uniform(-1, 1, size=(3, 256)), 4).astype(np.float32)
USPS_DIGITS = np.array([0, 4, 9])
SEMEION_IMAGES = (RNG.uniform(size=(4, 256)) > 0.7).astype(np.uint8)
SEMEION_DIGITS = np.array([3, 0, 9, 3])


def usps_text(images=USPS_IMAGES, digits=USPS_DIGITS):
    """Return images as LIBSVM's USPS files store them: "label index:value ...", label 1-10."""
    lines = [
        f"{digit + 1} " + " ".join(f"{i + 1}:{value:g}" for i, value in enumerate(image))
        for image, digit in zip(images, digits, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def write_usps(folder, subset="train", compress=True, content=None):
    """Write a USPS file of ``subset`` into ``folder``, bzip2-compressed or not."""
    content = usps_text() if content is None else content
    name = "usps" if subset == "train" else "usps.t"
    if compress:
        name, content = f"{name}.bz2", bz2.compress(content)
    path = folder / name
    path.write_bytes(content)
    return path


def semeion_text(images=SEMEION_IMAGES, digits=SEMEION_DIGITS):
    """Return images as UCI's semeion.data stores them: 256 pixels, then 10 indicators."""
    lines = []
    for image, digit in zip(images, digits, strict=True):
        indicators = np.eye(10, dtype=int)[digit]
        pixels = " ".join(f"{value:.4f}" for value in image)
        lines.append(pixels + " " + " ".join(map(str, indicators)) + " ")
    return ("\n".join(lines) + "\n").encode()


def write_semeion(folder, content=None):
    path = folder / "semeion.data"
    path.write_bytes(semeion_text() if content is None else content)
    return path


@pytest.mark.parametrize("compress", [True, False])
def test_load_usps_reads_libsvm_files_compressed_or_not(tmp_path, compress):
    write_usps(tmp_path, compress=compress)

    X, y = load_usps(data_home=tmp_path)

    assert X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_allclose(X, USPS_IMAGES, atol=1e-6)
    np.testing.assert_array_equal(y, USPS_DIGITS)


def test_load_usps_reads_the_test_subset_from_usps_t(tmp_path):
    write_usps(tmp_path)
    write_usps(tmp_path, "test", content=usps_text(USPS_IMAGES[:1], [7]))

    X, y = load_usps("test", data_home=tmp_path)

    np.testing.assert_allclose(X, USPS_IMAGES[:1], atol=1e-6)
    np.testing.assert_array_equal(y, [7])


def test_load_usps_places_pixels_by_index_and_omitted_ones_are_zero(tmp_path):
    write_usps(tmp_path, content=b"3 2:0.5 256:-1\n")

    X, y = load_usps(data_home=tmp_path)

    expected = np.zeros((1, 256), dtype=np.float32)
    expected[0, 1], expected[0, 255] = 0.5, -1
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(y, [2])


def test_load_usps_reads_every_stream_of_a_multi_stream_bzip2_file(tmp_path):
    first, second = usps_text(USPS_IMAGES[:2], USPS_DIGITS[:2]), usps_text(USPS_IMAGES[2:], [9])
    (tmp_path / "usps.bz2").write_bytes(bz2.compress(first) + bz2.compress(second))

    X, y = load_usps(data_home=tmp_path)

    np.testing.assert_allclose(X, USPS_IMAGES, atol=1e-6)
    np.testing.assert_array_equal(y, USPS_DIGITS)


def test_load_usps_missing_file_error_lists_every_path_looked_in(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_usps("test", data_home=tmp_path)

    message = str(error.value)
    assert "USPS 'test' file not found" in message
    assert str(tmp_path / "usps.t") in message
    assert str(tmp_path / "usps.t.bz2") in message
    assert "download=True" in message


def test_load_usps_download_fetches_the_file_with_torchvision(tmp_path, monkeypatch):
    calls = []

    class FakeUSPS:
        """Stands in for torchvision's USPS: writes the file where torchvision would."""

        def __init__(self, root, train, download):
            calls.append({"root": root, "train": train, "download": download})
            write_usps(root, "train" if train else "test")

    monkeypatch.setattr(torchvision.datasets, "USPS", FakeUSPS)

    X, y = load_usps("test", data_home=tmp_path, download=True)

    np.testing.assert_array_equal(y, USPS_DIGITS)
    assert calls == [{"root": tmp_path, "train": False, "download": True}]


def test_load_usps_download_skips_torchvision_when_the_file_exists(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("torchvision.datasets.USPS must not be called")

    monkeypatch.setattr(torchvision.datasets, "USPS", fail)
    write_usps(tmp_path)

    _, y = load_usps(data_home=tmp_path, download=True)

    np.testing.assert_array_equal(y, USPS_DIGITS)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"0 1:0.5\n", "holds the label 0; USPS labels are 1 to 10"),
        (b"11 1:0.5\n", "holds the label 11; USPS labels are 1 to 10"),
        (b"2.5 1:0.5\n", "holds the label 2.5"),
        (b"1 257:0.5\n", "is not a LIBSVM file of 16x16 images"),
        (b"1 0:0.5\n", "is not a LIBSVM file of 16x16 images"),
        (b"1 1:abc\n", "is not a LIBSVM file of 16x16 images"),
        (b"1 1:nan\n", "not finite"),
        (b"", "holds no images"),
    ],
)
def test_load_usps_rejects_a_file_that_is_not_usps(tmp_path, content, expected):
    write_usps(tmp_path, compress=False, content=content)

    with pytest.raises(ValueError, match=expected):
        load_usps(data_home=tmp_path)


def test_load_usps_rejects_a_corrupt_or_truncated_bzip2_file(tmp_path):
    compressed = bz2.compress(usps_text())
    (tmp_path / "usps.bz2").write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="not a valid bzip2 file"):
        load_usps(data_home=tmp_path)

    (tmp_path / "usps.bz2").write_bytes(b"BZh9" + b"\x00" * 100)
    with pytest.raises(ValueError, match="not a valid bzip2 file"):
        load_usps(data_home=tmp_path)


@pytest.mark.parametrize("compress", [True, False])
def test_load_usps_refuses_a_file_larger_than_any_usps_file(tmp_path, monkeypatch, compress):
    monkeypatch.setattr(skdigits.datasets, "_MAX_USPS_BYTES", 1000)
    # Compressed, a hundred times the limit takes a few dozen bytes: it must not be
    # decompressed in full.
    write_usps(tmp_path, compress=compress, content=b"1 1:0.5\n" * 12500)

    with pytest.raises(ValueError, match="holds more than .* a USPS file does"):
        load_usps(data_home=tmp_path)


def test_load_semeion_reads_the_uci_file(tmp_path):
    write_semeion(tmp_path)

    X, y = load_semeion(data_home=tmp_path)

    assert X.dtype == np.uint8
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X, SEMEION_IMAGES)
    np.testing.assert_array_equal(y, SEMEION_DIGITS)


def test_load_semeion_download_fetches_the_file_with_torchvision(tmp_path, monkeypatch):
    calls = []

    class FakeSEMEION:
        def __init__(self, root, download):
            calls.append({"root": root, "download": download})
            write_semeion(root)

    monkeypatch.setattr(torchvision.datasets, "SEMEION", FakeSEMEION)

    _, y = load_semeion(data_home=tmp_path, download=True)

    np.testing.assert_array_equal(y, SEMEION_DIGITS)
    assert calls == [{"root": tmp_path, "download": True}]


def test_load_semeion_missing_file_error_names_the_path_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="Semeion file not found") as error:
        load_semeion(data_home=tmp_path)

    assert str(tmp_path / "semeion.data") in str(error.value)
    assert "load_semeion(..., download=True)" in str(error.value)


def _with_row(change):
    table = np.loadtxt(semeion_text().decode().splitlines())
    change(table)
    return "\n".join(" ".join(f"{value:g}" for value in row) for row in table).encode()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"0 1 0\n", "holds rows of 3 numbers; a Semeion file holds 266"),
        (b"0 1 x\n", "is not a Semeion file of numbers"),
        (b"", "holds no images"),
        (_with_row(lambda table: table.__setitem__((0, 5), 0.5)), "pixels other than 0 and 1"),
        (_with_row(lambda table: table.__setitem__((1, 257), 1)), "not one 1 and nine 0s"),
        (_with_row(lambda table: table.__setitem__((2, 265), 0)), "not one 1 and nine 0s"),
    ],
)
def test_load_semeion_rejects_a_file_that_is_not_semeion(tmp_path, content, expected):
    write_semeion(tmp_path, content)

    with pytest.raises(ValueError, match=expected):
        load_semeion(data_home=tmp_path)


def test_load_semeion_refuses_a_file_larger_than_the_semeion_file(tmp_path, monkeypatch):
    monkeypatch.setattr(skdigits.datasets, "_MAX_SEMEION_BYTES", 1000)
    write_semeion(tmp_path)

    with pytest.raises(ValueError, match="holds more than .* the Semeion file does"):
        load_semeion(data_home=tmp_path)


@pytest.mark.parametrize("subset", ["train", "test"])
def test_load_dataset_usps_reads_the_subset(tmp_path, subset):
    write_usps(tmp_path, subset, content=usps_text(USPS_IMAGES[:1], [subset == "test"]))

    _, y = load_dataset("usps", subset, data_home=tmp_path)

    np.testing.assert_array_equal(y, [subset == "test"])


def test_load_dataset_semeion_returns_the_whole_file_for_either_subset(tmp_path):
    write_semeion(tmp_path)

    for subset in ("train", "test"):
        X, y = load_dataset("semeion", subset, data_home=tmp_path)
        np.testing.assert_array_equal(X, SEMEION_IMAGES)
        np.testing.assert_array_equal(y, SEMEION_DIGITS)


def bundled_digits_16x16(n):
    """Return ``n`` bundled 8x8 digits blown up to 16x16 (pixels 0..1) and their labels."""
    X, y = skdigits.datasets.load_digits()
    images = X[:n].reshape(n, 8, 8).repeat(2, axis=1).repeat(2, axis=2) / 16
    return images.reshape(n, 256), y[:n]


# A tiny network and few epochs: these tests check the command, not the accuracy.
TINY = ["--quiet", "--max-epochs", "1", "--channels", "4", "8", "--batch-size", "32"]


def test_cli_trains_on_usps_and_reports_and_evaluates_on_its_test_set(tmp_path, capsys):
    X, y = bundled_digits_16x16(60)
    write_usps(tmp_path, content=usps_text(X[:40] * 2 - 1, y[:40]))
    write_usps(tmp_path, "test", content=usps_text(X[40:] * 2 - 1, y[40:]))
    model = str(tmp_path / "usps.skd")
    data = ["--dataset", "usps", "--data-home", str(tmp_path)]

    assert main(["train", *TINY, *data, "--out", model]) == 0
    assert "on 20 images of the USPS test set" in capsys.readouterr().out
    assert main(["evaluate", model, *data]) == 0
    assert "on 20 images of the USPS test set" in capsys.readouterr().out
    assert skdigits.load(model)[0].image_shape_ == (16, 16)


def test_cli_evaluates_semeion_on_the_images_train_held_out(tmp_path, capsys):
    X, y = bundled_digits_16x16(50)
    write_semeion(tmp_path, semeion_text((X > 0.5).astype(np.uint8), y))
    model = str(tmp_path / "semeion.skd")
    data = ["--dataset", "semeion", "--data-home", str(tmp_path)]

    assert main(["train", *TINY, *data, "--test-size", "0.2", "--out", model]) == 0
    trained = capsys.readouterr().out.split("test accuracy: ")[1].split()[0]
    assert main(["evaluate", model, *data]) == 0
    assert f"accuracy: {trained} on 10 images held out when" in capsys.readouterr().out

    # A smaller file no longer holds the images the model file names as held out.
    write_semeion(tmp_path, semeion_text((X[:20] > 0.5).astype(np.uint8), y[:20]))
    assert main(["evaluate", model, *data]) == 1
    assert "which now holds 20 images" in capsys.readouterr().err


def test_cli_names_the_missing_usps_file_in_one_line(tmp_path, capsys):
    status = main(["benchmark", "--dataset", "usps", "--data-home", str(tmp_path)])

    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("skdigits: error: USPS 'train' file not found")
    assert "Traceback" not in err


def test_cli_download_fetches_missing_files_with_torchvision(tmp_path, monkeypatch, capsys):
    X, y = bundled_digits_16x16(50)
    calls = []

    class FakeSEMEION:
        def __init__(self, root, download):
            calls.append({"root": root, "download": download})
            write_semeion(root, semeion_text((X > 0.5).astype(np.uint8), y))

    monkeypatch.setattr(torchvision.datasets, "SEMEION", FakeSEMEION)
    data = ["--dataset", "semeion", "--data-home", str(tmp_path)]

    assert main(["benchmark", *data, "--cv", "2", "--quiet"]) == 1
    assert "--download on the skdigits command" in capsys.readouterr().err
    assert calls == []

    status = main(["train", *TINY, *data, "--download", "--out", str(tmp_path / "m.skd")])

    assert status == 0
    assert "on 10 held-out images" in capsys.readouterr().out
    assert calls == [{"root": tmp_path, "download": True}]


@pytest.mark.parametrize("dataset", ["usps", "semeion"])
def test_load_dataset_download_passes_on_to_the_loader(tmp_path, monkeypatch, dataset):
    class FakeUSPS:
        def __init__(self, root, train, download):
            write_usps(root, "train" if train else "test")

    class FakeSEMEION:
        def __init__(self, root, download):
            write_semeion(root)

    monkeypatch.setattr(torchvision.datasets, "USPS", FakeUSPS)
    monkeypatch.setattr(torchvision.datasets, "SEMEION", FakeSEMEION)

    _, y = load_dataset(dataset, "test", data_home=tmp_path, download=True)

    np.testing.assert_array_equal(y, USPS_DIGITS if dataset == "usps" else SEMEION_DIGITS)
