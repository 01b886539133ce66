"""Loaders that return digit datasets as ``(X, y)`` numpy arrays.

Every loader returns the pixels ``X`` and the labels ``y`` ready to pass to
:class:`~skdigits.CNNDigitClassifier`:

- :func:`load_mnist` reads MNIST from its standard IDX files (and can download them),
- :func:`load_digits` returns scikit-learn's bundled 8x8 digits,
- :func:`load_usps` and :func:`load_semeion` read two collections of 16x16 handwritten
  digits, USPS and Semeion (and can download them),
- :func:`load_image_folder` reads your own images, one sub-folder per class,
- :func:`list_image_folder` lists such a folder's files and labels, to read later,
- :func:`load_image` reads one image file, for example to predict its digit,
- :func:`load_dataset` calls the right one of these for a dataset's name or folder, as the
  ``skdigits`` command's ``--dataset`` option does,
- :func:`match_pixel_range` maps an image file's 0..255 pixels onto the scale a classifier
  was trained on.
"""

import bz2
import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import sklearn.datasets
from PIL import Image

from ._images import check_image_shape
from ._reading import read_colour, read_gray

__all__ = [
    "list_image_folder",
    "load_dataset",
    "load_digits",
    "load_image",
    "load_image_folder",
    "load_mnist",
    "load_semeion",
    "load_usps",
    "match_pixel_range",
]

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_IMAGE_SHAPE = (28, 28)
_IDX_UNSIGNED_BYTE = 0x08
_USPS_FILES = {"train": "usps", "test": "usps.t"}
_PIXELS_16X16 = 16 * 16  # USPS's and Semeion's images
_SEMEION_FILE = "semeion.data"
# Limits on what a file may hold, a few times the real files' sizes (USPS's training set
# is about 25 MB of text, 7,291 lines of 256 "index:value" pairs; Semeion's file about
# 3 MB), so that a corrupt or hostile file is refused before it fills the memory.
_MAX_USPS_BYTES = 64 * 2**20
_MAX_MNIST_BYTES = 64 * 2**20  # the training images take 47 MB
_MAX_SEMEION_BYTES = 16 * 2**20
# Readers of compressed files, each over an open binary file.
_DECOMPRESSORS = {
    ".gz": ("gzip", lambda file: gzip.GzipFile(fileobj=file)),
    ".bz2": ("bzip2", bz2.BZ2File),
}


def load_mnist(subset="train", data_home=None, download=False):
    """Return the MNIST images and labels of one subset as ``(X, y)``.

    The four standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each gzip-compressed with a
    ``.gz`` suffix or not, are looked for in ``data_home`` and then in ``data_home/MNIST/raw``,
    where ``torchvision.datasets.MNIST`` keeps them.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        ``"train"`` gives the 60,000 training images, ``"test"`` the 10,000 test images.
    data_home : str or path-like, default=None
        Folder holding the files. ``None`` means the ``SKDIGITS_DATA`` environment variable
        if it is set, else ``~/skdigits_data``.
    download : bool, default=False
        If the files are missing, download them with ``torchvision.datasets.MNIST`` into
        ``data_home/MNIST/raw`` first.

    Returns
    -------
    X : ndarray of shape (n_samples, 784), dtype uint8
        One row per image: the 28x28 pixels in row-major order, 0 (black background) to
        255 (white ink).
    y : ndarray of shape (n_samples,), dtype int64
        The digit shown in each image, 0 to 9; int64 like the labels of :func:`load_digits`.

    Raises
    ------
    ValueError
        If ``subset`` is neither ``"train"`` nor ``"test"``, or if a file is not a valid
        (gzip-compressed) IDX file of MNIST images or labels.
    FileNotFoundError
        If the files are missing and ``download=False``; the message lists every path
        looked in.

    See Also
    --------
    load_digits : Smaller 8x8 digits bundled with scikit-learn, no files needed.

    Examples
    --------
    >>> from skdigits.datasets import load_mnist
    >>> X, y = load_mnist("test", download=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((10000, 784), (10000,))
    """
    _check_subset(subset)
    data_home = _resolve_data_home(data_home)
    paths = _find_mnist_files(data_home, subset)
    if paths is None and download:
        # Imported here: torchvision adds seconds to import time and only downloads need it.
        import torchvision.datasets

        torchvision.datasets.MNIST(root=data_home, train=subset == "train", download=True)
        paths = _find_mnist_files(data_home, subset)
    if paths is None:
        looked_in = "\n".join(
            f"  {path}"
            for folder in _mnist_candidates(data_home, subset)
            for candidates in folder
            for path in candidates
        )
        file_names = ", ".join(name for names in _MNIST_FILES.values() for name in names)
        raise FileNotFoundError(
            f"MNIST {subset!r} files not found; looked for:\n{looked_in}\n"
            f"To get them, call load_mnist(..., download=True) (--download on the skdigits "
            "command), copy the four IDX files "
            f"({file_names}, each optionally .gz) into {data_home}, or set the SKDIGITS_DATA "
            "environment variable (or data_home) to a folder that holds them."
        )

    images_path, labels_path = paths
    images = _read_idx(images_path, (None, *_MNIST_IMAGE_SHAPE))
    labels = _read_idx(labels_path, (None,))
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; the files do not belong together, download them again"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"{labels_path} holds the label {labels.max()}; MNIST labels are digits 0 to 9"
        )
    # np.frombuffer views the read-only file bytes; copy so callers may modify X in place.
    return images.reshape(len(images), -1).copy(), labels.astype(np.int64)


def load_digits():
    """Return scikit-learn's bundled 8x8 digits as ``(X, y)``.

    A thin wrapper around :func:`sklearn.datasets.load_digits` so that every loader of this
    module returns the same ``(X, y)`` pair. No files or network are needed.

    Returns
    -------
    X : ndarray of shape (1797, 64), dtype float64
        One row per image: the 8x8 pixels in row-major order, 0 (background) to 16 (ink).
    y : ndarray of shape (1797,), dtype int64
        The digit shown in each image, 0 to 9.

    See Also
    --------
    sklearn.datasets.load_digits : The function wrapped.
    load_mnist : The larger 28x28 MNIST digits.

    Examples
    --------
    >>> from skdigits.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, y.shape
    ((1797, 64), (1797,))
    """
    return sklearn.datasets.load_digits(return_X_y=True)


def load_usps(subset="train", data_home=None, download=False):
    """Return the USPS handwritten digits of one subset as ``(X, y)``.

    USPS holds 16x16 grey-level digits scanned from envelopes of the US Postal Service:
    7,291 training and 2,007 test images. Its files are the ones LIBSVM's site publishes
    and ``torchvision.datasets.USPS`` downloads: ``usps.bz2`` (training) and
    ``usps.t.bz2`` (test), in LIBSVM's text format, bzip2-compressed or not (``usps``,
    ``usps.t``). They are looked for in ``data_home``.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        ``"train"`` gives the 7,291 training images, ``"test"`` the 2,007 test images.
    data_home : str or path-like, default=None
        Folder holding the files. ``None`` means the ``SKDIGITS_DATA`` environment variable
        if it is set, else ``~/skdigits_data``.
    download : bool, default=False
        If the file is missing, download it with ``torchvision.datasets.USPS`` into
        ``data_home`` first (its checksum is checked).

    Returns
    -------
    X : ndarray of shape (n_samples, 256), dtype float32
        One row per image: the 16x16 pixels in row-major order, on the file's scale of -1
        (background) to 1 (ink).
    y : ndarray of shape (n_samples,), dtype int64
        The digit shown in each image, 0 to 9 (the file stores it plus one).

    Raises
    ------
    ValueError
        If ``subset`` is neither ``"train"`` nor ``"test"``, or the file is not a valid
        (bzip2-compressed) LIBSVM file of 16x16 images labelled 1 to 10, or is larger than
        any USPS file.
    FileNotFoundError
        If the file is missing and ``download=False``; the message lists every path looked
        in.

    See Also
    --------
    load_semeion : Binary 16x16 digits of another collection.
    sklearn.datasets.load_svmlight_file : The parser of LIBSVM's format used here.

    Examples
    --------
    >>> from skdigits.datasets import load_usps
    >>> X, y = load_usps("test", download=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((2007, 256), (2007,))
    """
    _check_subset(subset)
    data_home = _resolve_data_home(data_home)
    name = _USPS_FILES[subset]
    candidates = [data_home / name, data_home / f"{name}.bz2"]
    path = _first_file(candidates)
    if path is None and download:
        import torchvision.datasets

        torchvision.datasets.USPS(root=data_home, train=subset == "train", download=True)
        path = _first_file(candidates)
    if path is None:
        raise _missing("USPS", subset, candidates, "load_usps", data_home)
    raw = _read_capped(path, _MAX_USPS_BYTES, "a USPS file")
    try:
        X, y = sklearn.datasets.load_svmlight_file(
            io.BytesIO(raw), n_features=_PIXELS_16X16, zero_based=False
        )
    except ValueError as exc:
        raise ValueError(
            f"{path} is not a LIBSVM file of 16x16 images ({exc}); download it again"
        ) from exc
    if len(y) == 0:
        raise ValueError(f"{path} holds no images")
    labelled = np.isin(y, np.arange(1, 11))
    if not labelled.all():
        bad = y[~labelled][0]
        raise ValueError(f"{path} holds the label {bad:g}; USPS labels are 1 to 10 (digit + 1)")
    X = X.toarray().astype(np.float32)
    if not np.isfinite(X).all():
        raise ValueError(f"{path} holds pixel values that are not finite numbers")
    return X, y.astype(np.int64) - 1


def load_semeion(data_home=None, download=False):
    """Return the Semeion handwritten digits as ``(X, y)``.

    Semeion holds 1,593 binary 16x16 digits written by about 80 people and scanned, with no
    split into training and test images (cross-validate, e.g. with 5 folds). Its file is
    ``semeion.data`` from the UCI Machine Learning Repository, the one
    ``torchvision.datasets.SEMEION`` downloads: per image a line of 256 pixels (0 or 1)
    and 10 indicator columns of the digit. It is looked for in ``data_home``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the file. ``None`` means the ``SKDIGITS_DATA`` environment variable
        if it is set, else ``~/skdigits_data``.
    download : bool, default=False
        If the file is missing, download it with ``torchvision.datasets.SEMEION`` into
        ``data_home`` first (its checksum is checked).

    Returns
    -------
    X : ndarray of shape (n_samples, 256), dtype uint8
        One row per image: the 16x16 pixels in row-major order, 0 (background) or 1 (ink).
    y : ndarray of shape (n_samples,), dtype int64
        The digit shown in each image, 0 to 9.

    Raises
    ------
    ValueError
        If the file is not a Semeion file: rows of 256 pixels of 0 or 1 and 10 indicator
        columns with exactly one 1, or larger than the Semeion file.
    FileNotFoundError
        If the file is missing and ``download=False``.

    See Also
    --------
    load_usps : Grey-level 16x16 digits of another collection.

    Examples
    --------
    >>> from skdigits.datasets import load_semeion
    >>> X, y = load_semeion(download=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((1593, 256), (1593,))
    """
    data_home = _resolve_data_home(data_home)
    candidates = [data_home / _SEMEION_FILE]
    path = _first_file(candidates)
    if path is None and download:
        import torchvision.datasets

        torchvision.datasets.SEMEION(root=data_home, download=True)
        path = _first_file(candidates)
    if path is None:
        raise _missing("Semeion", None, candidates, "load_semeion", data_home)
    text = _read_capped(path, _MAX_SEMEION_BYTES, "the Semeion file").decode("ascii", "replace")
    if not text.strip():
        raise ValueError(f"{path} holds no images")
    try:
        table = np.loadtxt(io.StringIO(text), ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path} is not a Semeion file of numbers ({exc})") from exc
    columns = _PIXELS_16X16 + 10
    if table.shape[1] != columns:
        raise ValueError(
            f"{path} holds rows of {table.shape[1]} numbers; a Semeion file holds {columns} per "
            "image (256 pixels and 10 indicator columns of the digit)"
        )
    pixels, labels = table[:, :_PIXELS_16X16], table[:, _PIXELS_16X16:]
    if not np.isin(pixels, (0, 1)).all():
        raise ValueError(f"{path} holds pixels other than 0 and 1; Semeion digits are binary")
    if not (np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all()):
        raise ValueError(
            f"{path} has a row whose last 10 columns are not one 1 and nine 0s, the digit's "
            "indicator"
        )
    return pixels.astype(np.uint8), labels.argmax(axis=1).astype(np.int64)


def load_image(path, image_shape=None, invert=False, colour=False):
    """Return one image file as a uint8 array of grayscale (or RGB) pixels.

    Every mode PIL reads is converted without clipping: colour to gray (ITU-R 601 luma),
    16-bit images scaled down to 0..255, palettes expanded, and transparent images laid on a
    paper colour that keeps the strokes visible (a black drawing on a transparent canvas
    becomes black on white). Photos are turned upright as their EXIF orientation says. Files
    too large to be digit images (PIL's decompression-bomb guard) are refused, and large
    pages are reduced to at most 1024 pixels a side while reading.

    Pixels are returned as they are, not normalised: to crop, scale and centre the digit the
    way MNIST was made, pass the files to :class:`~skdigits.DigitNormalizer` (or use
    ``load_image_folder(..., normalize=True)``).

    Parameters
    ----------
    path : str or path-like
        The image file, in any format PIL reads (PNG, JPEG, BMP, TIFF, ...).
    image_shape : tuple of (int, int), default=None
        ``(height, width)`` to resize the image to, with bilinear interpolation. ``None``
        keeps the image's own size.
    invert : bool, default=False
        If True, return ``255 - pixels``, turning dark ink on light paper into light on dark.
    colour : bool, default=False
        If True, keep the colour: return ``(height, width, 3)`` RGB pixels (grey files give
        three equal channels), for a classifier trained on colour images.

    Returns
    -------
    image : ndarray of shape (height, width) or (height, width, 3), dtype uint8
        Grayscale pixels, 0 black to 255 white (or the reverse with ``invert=True``); RGB
        with ``colour=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If the file is not an image PIL can read, is truncated or empty, is too large
        (a decompression bomb), or ``image_shape`` is not two positive ints.

    See Also
    --------
    load_image_folder : Read a whole folder of labelled images.
    skdigits.DigitNormalizer : Normalise digit images as MNIST was made.

    Examples
    --------
    >>> from skdigits.datasets import load_image
    >>> image = load_image("my_digit.png", image_shape=(28, 28), invert=True)  # doctest: +SKIP
    >>> image.shape  # doctest: +SKIP
    (28, 28)
    """
    size = None if image_shape is None else check_image_shape(image_shape)
    levels = np.clip((read_colour if colour else read_gray)(Path(path)), 0, 1)
    image = Image.fromarray(np.round(levels * 255).astype(np.uint8))
    if size is not None:
        height, width = size
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    return 255 - pixels if invert else pixels.copy()


def match_pixel_range(image, pixel_range):
    """Return 0..255 image pixels mapped onto the pixel range a classifier was trained on.

    Image files hold pixels from 0 to 255, but a classifier may have been trained on another
    scale: the bundled 8x8 digits use 0 to 16. A fitted :class:`~skdigits.CNNDigitClassifier`
    records the range of its training pixels as ``pixel_range_ = (low, span)``; mapping
    0..255 linearly onto ``low .. low + span`` shows it an image file on the scale it learned.
    This assumes the training pixels used their whole scale, as the bundled digits, MNIST and
    most image folders do.

    Parameters
    ----------
    image : array-like of uint8
        Pixels from 0 to 255, of any shape, for example from :func:`load_image`.
    pixel_range : tuple of two float
        ``(low, span)``: the ``pixel_range_`` of the fitted classifier.

    Returns
    -------
    pixels : ndarray of float32
        ``low + image / 255 * span``, of the shape of ``image``.

    See Also
    --------
    load_image : Read an image file as 0..255 pixels.
    skdigits.DigitNormalizer : Normalise image files as MNIST was made, on a 0..1 scale.

    Examples
    --------
    >>> import numpy as np
    >>> from skdigits.datasets import match_pixel_range
    >>> match_pixel_range(np.array([0, 51, 255], dtype=np.uint8), (0.0, 16.0))
    array([ 0. ,  3.2, 16. ], dtype=float32)
    """
    low, span = pixel_range
    return np.float32(low) + np.asarray(image, dtype=np.float32) / 255 * np.float32(span)


def list_image_folder(path):
    """Return the image files of a folder with one sub-folder per class, and their labels.

    The layout is the one ``torchvision.datasets.ImageFolder`` reads: each sub-folder of
    ``path`` is named after a class and holds that class's image files. Nothing is read but
    the folder listing, so this suits folders too large to hold in memory: pass the paths to
    a pipeline starting with :class:`~skdigits.DigitNormalizer`, which reads each file when
    it needs it.

    Parameters
    ----------
    path : str or path-like
        The folder holding one sub-folder per class, for example ``digits/0/a.png``,
        ``digits/1/b.png``, ...

    Returns
    -------
    paths : list of str
        The image files, in class-folder order, then file-name order.
    y : ndarray of shape (n_samples,)
        The class of each file: its sub-folder's name, as int64 when every sub-folder is
        named by an integer (``0`` to ``9``), so the labels compare with MNIST's; as str
        otherwise.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If ``path`` has no class sub-folders, or a class sub-folder holds no image files.

    Examples
    --------
    >>> from skdigits.datasets import list_image_folder
    >>> paths, y = list_image_folder("my_digits")  # doctest: +SKIP
    """
    # Imported here: torchvision adds seconds to import time and only image folders need it.
    import torchvision.datasets

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    try:
        folder = torchvision.datasets.ImageFolder(root)
    except FileNotFoundError as exc:
        raise ValueError(
            f"cannot read {root} as an image folder: {exc} Expected one sub-folder per "
            "class, each holding image files."
        ) from exc
    classes = np.array(folder.classes)
    if all(_is_integer_name(name) for name in folder.classes):
        classes = classes.astype(np.int64)
    return [file_path for file_path, _ in folder.samples], classes[folder.targets]


def load_image_folder(path, image_shape=None, invert=False, normalize=False, colour=False):
    """Return the images of a folder with one sub-folder per class as ``(X, y)``.

    The layout is the one ``torchvision.datasets.ImageFolder`` reads (see
    :func:`list_image_folder`). Each image is read with :func:`load_image`, or normalised
    as MNIST was made with ``normalize=True``.

    Parameters
    ----------
    path : str or path-like
        The folder holding one sub-folder per class, for example ``digits/0/a.png``,
        ``digits/1/b.png``, ...
    image_shape : tuple of (int, int), default=None
        ``(height, width)`` of the returned images: every image is resized to it, or framed
        in it with ``normalize=True``. ``None`` requires all images to share one size
        already, or 28x28 with ``normalize=True``.
    invert : bool, default=False
        If True, return ``255 - pixels`` for every image. Ignored with ``normalize=True``,
        which finds the ink's polarity in each image.
    normalize : bool, default=False
        If True, pass every image through :class:`~skdigits.DigitNormalizer`: the ink is
        separated from the paper, cropped, scaled and centred, light on a dark background,
        as float32 from 0 to 1. Images of any sizes then give one array.
    colour : bool, default=False
        If True (and ``normalize=False``), keep the colour: ``X`` holds ``(n, height,
        width, 3)`` RGB images, for a classifier trained on colour.

    Returns
    -------
    X : ndarray of shape (n_samples, height, width), dtype uint8 (float32 if normalized)
        Images in class-folder order, then file-name order.
    y : ndarray of shape (n_samples,)
        The class of each image, named by its sub-folder: int64 when every sub-folder is
        named by an integer, str otherwise.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If ``path`` has no class sub-folders or a class sub-folder holds no image files, an
        image file cannot be read or holds no ink (``normalize=True``), or
        ``image_shape=None`` and the images differ in size (``normalize=False``).

    See Also
    --------
    list_image_folder : The file paths and labels only, to read later.
    load_image : Read one image file.

    Examples
    --------
    >>> from skdigits.datasets import load_image_folder
    >>> X, y = load_image_folder("my_digits", normalize=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (120, 28, 28)
    """
    paths, y = list_image_folder(path)
    if normalize:
        # Imported here: the package imports this module before the normaliser.
        from ._normalizer import DigitNormalizer

        return DigitNormalizer(image_shape=image_shape).fit_transform(paths), y
    images = []
    for file_path in paths:
        image = load_image(file_path, image_shape=image_shape, invert=invert, colour=colour)
        if images and image.shape != images[0].shape:
            raise ValueError(
                f"images differ in size: {paths[0]} is {images[0].shape} (height, width) but "
                f"{file_path} is {image.shape}; pass image_shape=(height, width) to resize "
                "them all to one size, or normalize=True to frame each digit in 28x28"
            )
        images.append(image)
    return np.stack(images), y


def load_dataset(dataset, subset="train", data_home=None, download=False):
    """Return the dataset a name or folder names as ``(X, y)``.

    One call for every dataset the ``skdigits`` command and the examples accept: the
    bundled 8x8 digits, MNIST, USPS, Semeion, or a folder of your own images with one
    sub-folder per class.

    Parameters
    ----------
    dataset : str or path-like
        ``"digits"`` for scikit-learn's bundled 8x8 digits (:func:`load_digits`),
        ``"mnist"`` for MNIST (:func:`load_mnist`), ``"usps"`` for USPS
        (:func:`load_usps`), ``"semeion"`` for Semeion (:func:`load_semeion`), or the path
        of a folder with one sub-folder of images per class (:func:`list_image_folder`).
    subset : {"train", "test"}, default="train"
        The MNIST or USPS subset. The bundled digits, Semeion and image folders have no
        fixed split and are returned whole for either subset.
    data_home : str or path-like, default=None
        Folder holding the MNIST, USPS or Semeion files, as for :func:`load_mnist`;
        ignored for the other datasets.
    download : bool, default=False
        If the MNIST, USPS or Semeion files are missing, download them into ``data_home``
        first; ignored for the other datasets.

    Returns
    -------
    X : ndarray of shape (n_samples, n_pixels), or list of str
        Rows of pixels for the named datasets; for a folder, the paths of its
        image files, read when a model needs them (for example by a pipeline starting with
        :class:`~skdigits.DigitNormalizer`).
    y : ndarray of shape (n_samples,)
        The class of each image.

    Raises
    ------
    ValueError
        If ``dataset`` is neither a name above nor an existing folder, or ``subset`` is
        neither ``"train"`` nor ``"test"``.
    FileNotFoundError
        If the MNIST, USPS or Semeion files are missing from ``data_home`` and
        ``download=False``.

    See Also
    --------
    load_digits, load_mnist, load_usps, load_semeion, list_image_folder : The loaders
        called.
    load_image_folder : Read a folder's images into one array.

    Examples
    --------
    >>> from skdigits.datasets import load_dataset
    >>> X, y = load_dataset("digits")
    >>> X.shape, y.shape
    ((1797, 64), (1797,))
    >>> paths, y = load_dataset("my_digits")  # doctest: +SKIP
    """
    _check_subset(subset)
    if dataset == "digits":
        return load_digits()
    if dataset == "mnist":
        return load_mnist(subset, data_home, download)
    if dataset == "usps":
        return load_usps(subset, data_home, download)
    if dataset == "semeion":
        return load_semeion(data_home, download)
    if not Path(dataset).is_dir():
        raise ValueError(
            f"unknown dataset {str(dataset)!r}: expected 'digits', 'mnist', 'usps', 'semeion' "
            "or an existing folder of images with one sub-folder per class"
        )
    return list_image_folder(dataset)


def _check_subset(subset):
    """Raise if ``subset`` names neither MNIST's training nor its test set."""
    if subset not in _MNIST_FILES:
        raise ValueError(f"subset must be 'train' or 'test'; got {subset!r}")


def _is_integer_name(name):
    """Return whether a class folder's name spells an integer, such as "7"."""
    try:
        int(name)
    except ValueError:
        return False
    return True


def _resolve_data_home(data_home):
    """Return the folder MNIST files are read from, following the documented defaults."""
    if data_home is None:
        data_home = os.environ.get("SKDIGITS_DATA") or "~/skdigits_data"
    return Path(data_home).expanduser()


def _mnist_candidates(data_home, subset):
    """Return, per folder searched, the candidate paths of the images and labels files."""
    return [
        [(folder / name, folder / f"{name}.gz") for name in _MNIST_FILES[subset]]
        for folder in (data_home, data_home / "MNIST" / "raw")
    ]


def _find_mnist_files(data_home, subset):
    """Return the images and labels paths from the first folder holding both, or None."""
    for folder in _mnist_candidates(data_home, subset):
        # Uncompressed files come first: they read faster, and a torchvision download leaves
        # both forms side by side.
        found = [
            next((path for path in candidates if path.is_file()), None) for candidates in folder
        ]
        if None not in found:
            return found
    return None


def _read_idx(path, expected_shape):
    """Return the uint8 array stored in the IDX file ``path``, checked against its header.

    ``expected_shape`` gives the number of dimensions; its int entries must match exactly,
    ``None`` entries may be any size.
    """
    raw = _read_bytes(path)
    ndim = len(expected_shape)
    if len(raw) < 4 or raw[:3] != bytes([0, 0, _IDX_UNSIGNED_BYTE]):
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes: it starts with 0x{raw[:4].hex()}, "
            f"expected 0x000008 followed by the number of dimensions"
        )
    if raw[3] != ndim:
        raise ValueError(
            f"{path} holds a {raw[3]}-dimensional IDX array, expected {ndim} dimensions; "
            "check that the images and labels files are not swapped"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{path} is truncated: it holds {len(raw)} bytes, fewer than its "
            f"{header_size}-byte header; download it again"
        )
    shape = struct.unpack_from(f">{ndim}I", raw, 4)
    if any(
        want is not None and want != got for want, got in zip(expected_shape, shape, strict=True)
    ):
        expected = tuple("n" if want is None else want for want in expected_shape)
        raise ValueError(
            f"{path} holds an array of shape {shape}, expected ({', '.join(map(str, expected))})"
        )
    expected_size = header_size + math.prod(shape)
    if len(raw) != expected_size:
        holds = "decompresses to" if path.suffix == ".gz" else "holds"
        raise ValueError(
            f"{path} is truncated or corrupt: its header announces shape {shape}, which takes "
            f"{expected_size} bytes, but it {holds} {len(raw)} bytes; download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_bytes(path):
    """Return the content of the MNIST file ``path``, decompressed if it ends in ``.gz``."""
    return _read_capped(path, _MAX_MNIST_BYTES, "an MNIST file")


def _first_file(paths):
    """Return the first of ``paths`` that is a file, or None."""
    return next((path for path in paths if path.is_file()), None)


def _missing(dataset, subset, candidates, loader, data_home):
    """Return the FileNotFoundError of a dataset whose file is in none of ``candidates``."""
    looked_in = "\n".join(f"  {path}" for path in candidates)
    which = f"{dataset} {subset!r} file" if subset else f"{dataset} file"
    return FileNotFoundError(
        f"{which} not found; looked for:\n{looked_in}\n"
        f"To get it, call {loader}(..., download=True) (--download on the skdigits command), "
        f"copy the file into {data_home}, or "
        "set the SKDIGITS_DATA environment variable (or data_home) to a folder that holds it."
    )


def _read_capped(path, limit, what):
    """Return the content of ``path``, decompressed if it ends in ``.gz`` or ``.bz2``.

    At most ``limit`` bytes are read or decompressed: a larger file, or one that
    decompresses to more, is refused before it fills the memory.
    """
    with open(path, "rb") as file:
        if path.suffix not in _DECOMPRESSORS:
            raw = file.read(limit + 1)
        else:
            kind, decompressor = _DECOMPRESSORS[path.suffix]
            try:
                # Both read every stream of a file that holds several, as pbzip2 writes them.
                with decompressor(file) as stream:
                    raw = stream.read(limit + 1)
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(
                    f"{path} is not a valid {kind} file ({exc}); download it again"
                ) from exc
    if len(raw) > limit:
        raise ValueError(
            f"{path} holds more than {limit // 2**20} MiB, more than {what} does; it is not one"
        )
    return raw
