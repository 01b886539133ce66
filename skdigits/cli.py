"""The ``skdigits`` command: train, evaluate, predict and benchmark from a shell.

A thin layer over the library: it parses the options, calls :mod:`skdigits`, and prints.
Run ``skdigits --help`` (or ``python -m skdigits --help``) and ``skdigits COMMAND --help``.

Examples
--------
.. code-block:: console

    $ skdigits train --out digits-model.skd
    $ skdigits evaluate digits-model.skd --confusion-matrix confusion.png
    $ skdigits predict digits-model.skd my_digit.png --invert
    $ skdigits benchmark --dataset mnist --n-samples 5000 --cv 3
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, classification_report
from sklearn.model_selection import train_test_split

from . import CNNDigitClassifier, __version__, datasets, load
from ._baselines import baseline_models, compare_models, format_scores

__all__ = ["main", "match_pixel_range"]

_CNN_DEFAULTS = CNNDigitClassifier().get_params()
_DATASET_HELP = (
    "'digits' (scikit-learn's bundled 8x8 digits), 'mnist' (the MNIST IDX files in "
    "--data-home) or the path of a folder with one sub-folder of images per class"
)


def main(argv=None):
    """Run the ``skdigits`` command with the arguments ``argv``; return its exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name; ``None`` means ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when the command fails (missing or unreadable file, unknown dataset,
        invalid option value), 2 for invalid usage. Errors are printed to stderr as
        ``skdigits: error: ...``, without a traceback.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits after --help (0) and usage errors (2); main returns instead, so that
        # callers and tests get the status without catching SystemExit.
        return exit_.code
    try:
        args.run(args)
    except (OSError, ValueError, ImportError) as exc:
        print(f"{parser.prog}: error: {_message(exc)}", file=sys.stderr)
        return 1
    return 0


def _message(exc):
    """Return the message of ``exc``, without the ``[Errno N]`` prefix of system errors."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


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
        Pixels from 0 to 255, of any shape, for example from
        :func:`skdigits.datasets.load_image`.
    pixel_range : tuple of two float
        ``(low, span)``: the ``pixel_range_`` of the fitted classifier.

    Returns
    -------
    pixels : ndarray of float32
        ``low + image / 255 * span``, of the shape of ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdigits.cli import match_pixel_range
    >>> match_pixel_range(np.array([0, 51, 255], dtype=np.uint8), (0.0, 16.0))
    array([ 0. ,  3.2, 16. ], dtype=float32)
    """
    low, span = pixel_range
    return np.float32(low) + np.asarray(image, dtype=np.float32) / 255 * np.float32(span)


def _train(args):
    """Fit a classifier, report the best epoch, test accuracy and fit time, and save it."""
    out_folder = Path(args.out).parent
    if not out_folder.is_dir():
        # Checked before training, which can take long, rather than when saving.
        raise FileNotFoundError(f"cannot write {args.out}: the folder {out_folder} does not exist")
    X, y = _load_dataset(args)
    if args.dataset == "mnist":
        # MNIST comes with its own test set, used here for reporting only.
        X_train, y_train = X, y
        X_test, y_test = _load_dataset(args, subset="test")
        test_set = "images of the MNIST test set"
    else:
        X_train, X_test, y_train, y_test = _split(X, y, args.test_size, args.random_state)
        test_set = "held-out images"
    clf = _classifier(args, verbose=0 if args.quiet else 1)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    print(f"best epoch: {clf.best_epoch_} of {clf.n_iter_}")
    print(f"test accuracy: {clf.score(X_test, y_test):.4f} on {len(y_test)} {test_set}")
    print(f"fit time: {fit_time:.1f} s")
    clf.save(args.out)
    print(f"model written to {args.out}")


def _evaluate(args):
    """Print the accuracy and classification report of a saved model on a test set."""
    clf = load(args.model)
    X, y = _load_dataset(args, subset="test", image_shape=clf.image_shape_)
    if args.dataset == "mnist":
        test_set = "images of the MNIST test set"
    elif args.test_size == 1:
        test_set = "images"
    else:
        random_state = _split_seed(args.random_state, clf)
        _, X, _, y = _split(X, y, args.test_size, random_state)
        test_set = f"held-out images (test size {args.test_size}, seed {random_state})"
    if args.dataset != "digits":
        # MNIST and image files hold 0..255 pixels; the model may have learned another scale.
        X = match_pixel_range(X, clf.pixel_range_)
    y_pred = clf.predict(X)
    print(f"accuracy: {accuracy_score(y, y_pred):.4f} on {len(y)} {test_set}")
    # zero_division=0: a weak model that never predicts some class gets 0, not a warning.
    print(classification_report(y, y_pred, digits=4, zero_division=0))
    if args.confusion_matrix is not None:
        from .plotting import plot_confusion_matrix

        plot_confusion_matrix(clf, X, y, path=args.confusion_matrix)
        print(f"confusion matrix written to {args.confusion_matrix}")


def _predict(args):
    """Print each image's path, predicted label and its probability, tab-separated."""
    clf = load(args.model)
    images = np.stack(
        [
            datasets.load_image(path, image_shape=clf.image_shape_, invert=args.invert)
            for path in args.images
        ]
    )
    proba = clf.predict_proba(match_pixel_range(images, clf.pixel_range_))
    for path, label, probability in zip(
        args.images, clf.classes_[proba.argmax(axis=1)], proba.max(axis=1), strict=True
    ):
        print(f"{path}\t{label}\t{probability:.4f}")


def _benchmark(args):
    """Print the cross-validated accuracy and fit time of the CNN and the baselines."""
    X, y = _load_dataset(args)
    if args.n_samples is not None and args.n_samples < len(y):
        X, _, y, _ = train_test_split(
            X, y, train_size=args.n_samples, stratify=y, random_state=args.random_state
        )
    # The baselines take rows of pixels; the CNN is told the shape of images from a folder,
    # which may not be square.
    image_shape = X.shape[1:] if X.ndim == 3 else None
    X = X.reshape(len(X), -1)
    models = {
        "CNNDigitClassifier": _classifier(args, image_shape=image_shape),
        **baseline_models(args.random_state),
    }
    print(f"{args.cv}-fold cross-validation on {len(y)} images of {args.dataset}")
    print(format_scores(compare_models(models, X, y, cv=args.cv)))


def _load_dataset(args, subset="train", image_shape=None):
    """Return ``(X, y)`` of ``--dataset``: MNIST's ``subset``, the bundled digits or a folder.

    ``image_shape`` resizes the images of a folder.
    """
    if args.dataset == "mnist":
        return datasets.load_mnist(subset, args.data_home)
    if args.dataset == "digits":
        return datasets.load_digits()
    if Path(args.dataset).is_dir():
        return datasets.load_image_folder(args.dataset, image_shape=image_shape)
    raise ValueError(
        f"unknown dataset {args.dataset!r}: expected 'digits', 'mnist' or an existing folder of "
        "images with one sub-folder per class"
    )


def _split(X, y, test_size, random_state):
    """Return ``X_train, X_test, y_train, y_test``: the stratified split train holds out."""
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=random_state)


def _split_seed(random_state, clf):
    """Return the seed of the held-out split: the option, else the model's own seed."""
    if random_state is not None:
        return random_state
    return clf.random_state if isinstance(clf.random_state, int) else 0


def _classifier(args, **params):
    """Return a CNNDigitClassifier with the model options given on the command line."""
    options = {
        name: getattr(args, name)
        for name in ("channels", "max_epochs", "batch_size", "lr", "augment")
        if getattr(args, name) is not None
    }
    if "channels" in options:
        options["channels"] = tuple(options["channels"])
    return CNNDigitClassifier(random_state=args.random_state, **options, **params)


def _parser():
    """Return the argument parser of the ``skdigits`` command and its sub-commands."""
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--dataset", default="digits", metavar="NAME", help=f"{_DATASET_HELP} (default: digits)"
    )
    data.add_argument(
        "--data-home",
        metavar="DIR",
        help="folder holding the MNIST files (default: $SKDIGITS_DATA or ~/skdigits_data)",
    )

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--max-epochs", type=int, metavar="N", help=_default("training epochs", "max_epochs")
    )
    model.add_argument(
        "--batch-size", type=int, metavar="N", help=_default("images per step", "batch_size")
    )
    model.add_argument("--lr", type=float, metavar="X", help=_default("peak learning rate", "lr"))
    model.add_argument(
        "--augment",
        type=float,
        metavar="X",
        help=_default("strength of random affine augmentation, 0 for none", "augment"),
    )
    model.add_argument(
        "--channels",
        type=int,
        nargs="+",
        metavar="N",
        help=_default("output channels of each convolutional stage", "channels"),
    )
    model.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="N",
        help="seed of the data split and the models (default: 0)",
    )

    test_size = argparse.ArgumentParser(add_help=False)
    test_size.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        metavar="X",
        help="fraction of the bundled digits or of an image folder held out, stratified, for "
        "testing; MNIST uses its own test set (default: 0.2)",
    )

    parser = argparse.ArgumentParser(
        prog="skdigits",
        description="Train, evaluate and use a convolutional neural network for digit images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        parents=[data, model, test_size],
        help="train a classifier and save it as a model file",
        description="Train a CNNDigitClassifier, print its per-epoch progress, best epoch, "
        "test accuracy and fit time, and save it as a model file. With no options it trains "
        "on the bundled 8x8 digits in seconds.",
    )
    train.add_argument(
        "--out",
        default="digits-model.skd",
        metavar="PATH",
        help="model file to write (default: digits-model.skd)",
    )
    train.add_argument("--quiet", action="store_true", help="do not print the per-epoch table")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[data, test_size],
        help="print the accuracy and classification report of a model file",
        description="Print the accuracy and per-class report of a saved model. MNIST is "
        "evaluated on its test set. The bundled digits and image folders are evaluated on the "
        "split that 'skdigits train' held out, drawn again with the seed the model was "
        "trained with: pass the --test-size given to train if it was not the default. "
        "--test-size 1 evaluates on all images, for a folder of new images. Folder images are "
        "resized to the model's image shape, and the 0..255 pixels of MNIST and folders are "
        "mapped onto the model's training pixel range.",
    )
    evaluate.add_argument("model", metavar="MODEL", help="model file written by train")
    evaluate.add_argument(
        "--random-state",
        type=int,
        metavar="N",
        help="seed of the held-out split (default: the random_state the model was trained with)",
    )
    evaluate.add_argument(
        "--confusion-matrix", metavar="PNG", help="also save a confusion-matrix plot to PNG"
    )
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict",
        help="print the predicted digit of image files",
        description="Print 'path<TAB>label<TAB>probability' for each image file. Images are "
        "converted to grayscale, resized to the model's image shape, and their 0..255 pixels "
        "mapped onto the model's training pixel range.",
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by train")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    predict.add_argument(
        "--invert",
        action="store_true",
        help="invert the pixels, for dark digits on light paper when the model was trained on "
        "light digits on a dark background (the bundled digits, MNIST)",
    )
    predict.set_defaults(run=_predict)

    benchmark = commands.add_parser(
        "benchmark",
        parents=[data, model],
        help="cross-validate the CNN next to scikit-learn baselines",
        description="Cross-validate CNNDigitClassifier, logistic regression, an RBF SVC and a "
        "multi-layer perceptron on the same folds, and print each model's mean accuracy, its "
        "standard deviation and the mean fit time.",
    )
    benchmark.add_argument(
        "--cv", type=int, default=5, metavar="K", help="number of stratified folds (default: 5)"
    )
    benchmark.add_argument(
        "--n-samples",
        type=int,
        metavar="N",
        help="use a stratified random subset of N images, e.g. 5000 of MNIST's 60000 "
        "(default: all)",
    )
    benchmark.set_defaults(run=_benchmark)
    return parser


def _default(description, param):
    """Return the help text of a model option, naming the classifier's default."""
    return f"{description} (default: {_CNN_DEFAULTS[param]})"
