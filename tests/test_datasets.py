import gzip
import struct

import numpy as np
import pytest
import torchvision.datasets
from PIL import Image

import skdigits.datasets
from skdigits.datasets import (
    load_dataset,
    load_digits,
    load_image,
    load_image_folder,
    load_mnist,
    match_pixel_range,
)

IMAGES = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
LABELS = np.array([7, 0, 9], dtype=np.uint8)
TEST_IMAGES = 255 - IMAGES[:2]
TEST_LABELS = np.array([1, 2], dtype=np.uint8)


def idx_bytes(array, type_byte=0x08):
    """Return ``array`` encoded as an IDX file: magic, big-endian dimensions, then the data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_file(path, content):
    """Write ``content`` to ``path``, gzip-compressed if its name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    return path


def write_mnist(folder, suffix=".gz", subset="train", images=IMAGES, labels=LABELS):
    """Write an MNIST images and labels pair into ``folder``; return their paths."""
    prefix = "train" if subset == "train" else "t10k"
    return (
        write_file(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images)),
        write_file(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels)),
    )


def write_image(path, pixels, mode="L"):
    """Save ``pixels`` as an image file at ``path``, creating its class folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode=mode).save(path)
    return path


def assert_mnist_equal(X, y, images=IMAGES, labels=LABELS):
    assert X.dtype == np.uint8
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(len(images), -1))
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_load_mnist_reads_idx_files_gzipped_or_not(tmp_path, suffix):
    write_mnist(tmp_path, suffix)

    X, y = load_mnist(data_home=tmp_path)

    assert_mnist_equal(X, y)


def test_load_mnist_reads_the_test_subset_from_t10k_files(tmp_path):
    write_mnist(tmp_path)
    write_mnist(tmp_path, subset="test", images=TEST_IMAGES, labels=TEST_LABELS)

    X, y = load_mnist("test", data_home=tmp_path)

    assert_mnist_equal(X, y, TEST_IMAGES, TEST_LABELS)


def test_load_mnist_reads_torchvision_raw_layout(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")

    X, y = load_mnist(data_home=tmp_path)

    assert_mnist_equal(X, y)


def test_load_mnist_reads_skdigits_data_environment_variable(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    monkeypatch.setenv("SKDIGITS_DATA", str(tmp_path))

    X, y = load_mnist()

    assert_mnist_equal(X, y)


def test_load_mnist_defaults_to_skdigits_data_in_home_folder(tmp_path, monkeypatch):
    write_mnist(tmp_path / "skdigits_data")
    monkeypatch.delenv("SKDIGITS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    X, y = load_mnist()

    assert_mnist_equal(X, y)


def test_load_mnist_returns_writable_arrays(tmp_path):
    write_mnist(tmp_path)

    X, y = load_mnist(data_home=tmp_path)

    assert X.flags.writeable
    assert y.flags.writeable


@pytest.mark.parametrize("subset", ["training", "t10k", None])
def test_load_mnist_rejects_unknown_subset(tmp_path, subset):
    with pytest.raises(ValueError, match="subset must be 'train' or 'test'"):
        load_mnist(subset, data_home=tmp_path)


def test_load_mnist_missing_files_error_lists_every_path_looked_in(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        load_mnist(data_home=tmp_path)

    message = str(excinfo.value)
    for folder in (tmp_path, tmp_path / "MNIST" / "raw"):
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            assert str(folder / name) in message
            assert str(folder / f"{name}.gz") in message
    assert "download=True" in message
    assert "SKDIGITS_DATA" in message


def test_load_mnist_missing_labels_file_is_an_error(tmp_path):
    _, labels_path = write_mnist(tmp_path)
    labels_path.unlink()

    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(data_home=tmp_path)


def test_load_mnist_download_fetches_files_with_torchvision(tmp_path, monkeypatch):
    calls = []

    class FakeMNIST:
        """Stands in for torchvision's MNIST: writes the files where torchvision would."""

        def __init__(self, root, train, download):
            calls.append({"root": root, "train": train, "download": download})
            raw = root / "MNIST" / "raw"
            write_mnist(raw, ".gz")
            write_mnist(raw, "")

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)

    X, y = load_mnist(data_home=tmp_path, download=True)

    assert_mnist_equal(X, y)
    assert calls == [{"root": tmp_path, "train": True, "download": True}]


def test_load_mnist_download_skips_torchvision_when_files_exist(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("torchvision.datasets.MNIST must not be called")

    monkeypatch.setattr(torchvision.datasets, "MNIST", fail)
    write_mnist(tmp_path)

    X, y = load_mnist(data_home=tmp_path, download=True)

    assert_mnist_equal(X, y)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_load_mnist_rejects_truncated_file(tmp_path, suffix):
    path = write_file(tmp_path / f"train-images-idx3-ubyte{suffix}", idx_bytes(IMAGES)[:-10])
    write_file(tmp_path / f"train-labels-idx1-ubyte{suffix}", idx_bytes(LABELS))
    expected_size = 16 + IMAGES.size

    with pytest.raises(ValueError) as excinfo:
        load_mnist(data_home=tmp_path)

    message = str(excinfo.value)
    assert str(path) in message
    assert str(expected_size) in message
    assert str(expected_size - 10) in message


def test_load_mnist_rejects_file_longer_than_its_header_announces(tmp_path):
    write_mnist(tmp_path)
    write_file(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(LABELS) + b"\x00")

    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz.* 11 bytes.* 12 bytes"):
        load_mnist(data_home=tmp_path)


def test_load_mnist_rejects_file_shorter_than_its_header(tmp_path):
    write_mnist(tmp_path)
    write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(IMAGES)[:10])

    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is truncated"):
        load_mnist(data_home=tmp_path)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated-stream"),
        pytest.param(lambda data: data[:20] + bytes(40) + data[60:], id="overwritten-bytes"),
        pytest.param(lambda data: data[:-8] + bytes(8), id="wrong-checksum"),
        pytest.param(lambda data: b"not gzip at all", id="not-gzip"),
    ],
)
def test_load_mnist_rejects_corrupt_gzip_stream(tmp_path, corrupt):
    images_path, _ = write_mnist(tmp_path)
    images_path.write_bytes(corrupt(images_path.read_bytes()))

    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is not a valid gzip"):
        load_mnist(data_home=tmp_path)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_load_mnist_refuses_a_file_larger_than_any_mnist_file(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(skdigits.datasets, "_MAX_MNIST_BYTES", 1000)
    # Gzip-compressed, a hundred times the limit takes a few hundred bytes: it must not be
    # decompressed in full.
    images = np.zeros((128, 28, 28), dtype=np.uint8)
    write_mnist(tmp_path, suffix, images=images, labels=np.zeros(128, dtype=np.uint8))

    with pytest.raises(ValueError, match="holds more than 0 MiB, more than an MNIST file does"):
        load_mnist(data_home=tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(idx_bytes(IMAGES, type_byte=0x0D), id="float-type-byte"),
        pytest.param(b"\x1f\x8b" + idx_bytes(IMAGES)[2:], id="nonzero-leading-bytes"),
        pytest.param(b"PK\x03\x04" + bytes(100), id="zip-file"),
    ],
)
def test_load_mnist_rejects_wrong_magic_number(tmp_path, content):
    write_mnist(tmp_path, "")
    write_file(tmp_path / "train-images-idx3-ubyte", content)

    with pytest.raises(ValueError, match="train-images-idx3-ubyte is not an IDX file"):
        load_mnist(data_home=tmp_path)


def test_load_mnist_rejects_swapped_images_and_labels(tmp_path):
    write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(LABELS))
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(IMAGES))

    with pytest.raises(ValueError, match="1-dimensional IDX array, expected 3 dimensions"):
        load_mnist(data_home=tmp_path)


def test_load_mnist_rejects_images_that_are_not_28_by_28(tmp_path):
    write_mnist(tmp_path, images=np.zeros((3, 16, 16)))

    with pytest.raises(ValueError, match=r"shape \(3, 16, 16\), expected \(n, 28, 28\)"):
        load_mnist(data_home=tmp_path)


def test_load_mnist_rejects_mismatched_image_and_label_counts(tmp_path):
    write_mnist(tmp_path, labels=LABELS[:2])

    with pytest.raises(ValueError, match="holds 3 images but .* holds 2 labels"):
        load_mnist(data_home=tmp_path)


def test_load_mnist_rejects_labels_outside_0_to_9(tmp_path):
    write_mnist(tmp_path, labels=[7, 10, 9])

    with pytest.raises(ValueError, match="holds the label 10"):
        load_mnist(data_home=tmp_path)


def test_load_digits_returns_sklearn_8x8_digits():
    X, y = load_digits()

    assert X.shape == (1797, 64)
    assert X.dtype == np.float64
    assert X.min() == 0
    assert X.max() == 16
    assert y.shape == (1797,)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_load_image_returns_grayscale_pixels_as_2d_uint8(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = write_image(tmp_path / "digit.png", pixels)

    image = load_image(path)

    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, pixels)


def test_load_image_converts_rgb_to_grayscale(tmp_path):
    red = np.zeros((4, 5, 3), dtype=np.uint8)
    red[..., 0] = 255
    path = write_image(tmp_path / "red.png", red, mode="RGB")

    image = load_image(path)

    assert image.shape == (4, 5)
    # ITU-R 601-2 luma, as PIL's convert("L") computes it: 255 * 299 / 1000.
    np.testing.assert_array_equal(image, np.full((4, 5), 76))


def test_load_image_resizes_to_image_shape_height_then_width(tmp_path):
    path = write_image(tmp_path / "digit.png", np.full((40, 60), 200))

    image = load_image(path, image_shape=(28, 14))

    assert image.shape == (28, 14)
    np.testing.assert_array_equal(image, np.full((28, 14), 200))


def test_load_image_inverts_when_asked(tmp_path):
    path = write_image(tmp_path / "digit.png", [[0, 55], [200, 255]])

    image = load_image(path, invert=True)

    np.testing.assert_array_equal(image, [[255, 200], [55, 0]])


def test_load_image_reads_jpeg(tmp_path):
    path = write_image(tmp_path / "digit.jpg", np.full((8, 8), 128))

    image = load_image(path)

    assert image.shape == (8, 8)
    assert np.abs(image.astype(int) - 128).max() <= 2


def test_load_image_turns_photo_upright_from_exif_orientation(tmp_path):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned 90 degrees.
    Image.new("L", (30, 20)).save(path, exif=exif)

    image = load_image(path)

    assert image.shape == (30, 20)


def test_load_image_rejects_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not an image", id="not-an-image"),
        pytest.param(None, id="truncated-png"),
    ],
)
def test_load_image_rejects_unreadable_file(tmp_path, content):
    path = write_image(
        tmp_path / "broken.png", np.random.default_rng(0).integers(0, 256, (64, 64))
    )
    path.write_bytes(path.read_bytes()[:200] if content is None else content)

    with pytest.raises(ValueError, match="cannot read the image file .*broken.png"):
        load_image(path)


@pytest.mark.parametrize("image_shape", [(28,), (28, 0), (-1, 28), (28.0, 28), "28x28", 28])
def test_load_image_rejects_invalid_image_shape(tmp_path, image_shape):
    path = write_image(tmp_path / "digit.png", np.zeros((8, 8)))

    with pytest.raises(ValueError, match="image_shape must be two positive ints"):
        load_image(path, image_shape=image_shape)


def test_load_image_folder_takes_classes_from_folder_names(tmp_path):
    write_image(tmp_path / "seven" / "a.png", np.full((5, 4), 7))
    write_image(tmp_path / "one" / "b.png", np.full((5, 4), 1))
    write_image(tmp_path / "one" / "c.png", np.full((5, 4), 2))

    X, y = load_image_folder(tmp_path)

    assert X.dtype == np.uint8
    assert X.shape == (3, 5, 4)
    np.testing.assert_array_equal(y, ["one", "one", "seven"])
    np.testing.assert_array_equal(X[:, 0, 0], [1, 2, 7])


def test_load_image_folder_converts_rgb_images_to_grayscale(tmp_path):
    write_image(tmp_path / "0" / "rgb.png", np.full((6, 6, 3), 90), mode="RGB")
    write_image(tmp_path / "0" / "gray.png", np.full((6, 6), 90))

    X, _ = load_image_folder(tmp_path)

    np.testing.assert_array_equal(X, np.full((2, 6, 6), 90))


def test_load_image_folder_resizes_every_image_to_image_shape(tmp_path):
    write_image(tmp_path / "0" / "small.png", np.zeros((10, 10)))
    write_image(tmp_path / "1" / "large.jpg", np.zeros((64, 48)))

    X, y = load_image_folder(tmp_path, image_shape=(28, 28))

    assert X.shape == (2, 28, 28)
    np.testing.assert_array_equal(y, [0, 1])  # integer folder names give int labels


def test_load_image_folder_inverts_when_asked(tmp_path):
    write_image(tmp_path / "0" / "a.png", np.full((3, 3), 250))

    X, _ = load_image_folder(tmp_path, invert=True)

    np.testing.assert_array_equal(X, np.full((1, 3, 3), 5))


def test_load_image_folder_ignores_files_that_are_not_images(tmp_path):
    write_image(tmp_path / "0" / "a.png", np.zeros((3, 3)))
    (tmp_path / "0" / "notes.txt").write_text("not an image")
    (tmp_path / "README.md").write_text("not a class")

    X, y = load_image_folder(tmp_path)

    assert X.shape == (1, 3, 3)
    np.testing.assert_array_equal(y, [0])


def test_load_image_folder_rejects_differing_sizes_without_image_shape(tmp_path):
    write_image(tmp_path / "0" / "a.png", np.zeros((28, 28)))
    write_image(tmp_path / "1" / "b.png", np.zeros((32, 30)))

    with pytest.raises(ValueError) as excinfo:
        load_image_folder(tmp_path)

    message = str(excinfo.value)
    for expected in ("a.png", "(28, 28)", "b.png", "(32, 30)", "image_shape"):
        assert expected in message


def test_load_image_folder_rejects_folder_without_class_folders(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((3, 3)))

    with pytest.raises(ValueError, match=f"cannot read {tmp_path} as an image folder"):
        load_image_folder(tmp_path)


def test_load_image_folder_rejects_class_folder_without_images(tmp_path):
    write_image(tmp_path / "0" / "a.png", np.zeros((3, 3)))
    (tmp_path / "1").mkdir()

    with pytest.raises(ValueError, match=f"cannot read {tmp_path} as an image folder"):
        load_image_folder(tmp_path)


def test_load_image_folder_rejects_unreadable_image(tmp_path):
    write_image(tmp_path / "0" / "a.png", np.zeros((3, 3)))
    broken = tmp_path / "1" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not an image")

    with pytest.raises(ValueError, match="cannot read the image file .*broken.png"):
        load_image_folder(tmp_path)


def test_load_image_folder_rejects_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found: .*missing"):
        load_image_folder(tmp_path / "missing")


def test_match_pixel_range_maps_0_255_onto_the_learned_range():
    pixels = match_pixel_range(np.array([0, 255], dtype=np.uint8), (-1.0, 2.0))

    np.testing.assert_allclose(pixels, [-1.0, 1.0])
    assert pixels.dtype == np.float32


def test_load_dataset_digits_returns_the_bundled_digits_for_either_subset():
    X, y = load_digits()

    for subset in ("train", "test"):
        X_loaded, y_loaded = load_dataset("digits", subset)
        np.testing.assert_array_equal(X_loaded, X)
        np.testing.assert_array_equal(y_loaded, y)


@pytest.mark.parametrize("subset", ["train", "test"])
def test_load_dataset_mnist_reads_the_subset_from_data_home(tmp_path, subset):
    images, labels = (IMAGES, LABELS) if subset == "train" else (TEST_IMAGES, TEST_LABELS)
    write_mnist(tmp_path, subset=subset, images=images, labels=labels)

    X, y = load_dataset("mnist", subset, data_home=tmp_path)

    assert_mnist_equal(X, y, images, labels)


def test_load_dataset_folder_lists_image_files_and_labels(tmp_path):
    write_image(tmp_path / "0" / "a.png", np.zeros((3, 3)))
    write_image(tmp_path / "1" / "b.png", np.zeros((5, 5)))

    paths, y = load_dataset(tmp_path)

    assert paths == [str(tmp_path / "0" / "a.png"), str(tmp_path / "1" / "b.png")]
    np.testing.assert_array_equal(y, [0, 1])


def test_load_dataset_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown dataset 'emnist': expected 'digits', 'mnist'"):
        load_dataset("emnist")


@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_load_dataset_rejects_unknown_subset(dataset):
    with pytest.raises(ValueError, match="subset must be 'train' or 'test'; got 'valid'"):
        load_dataset(dataset, "valid")
