"""The ``skdigits`` command: train, evaluate, predict and benchmark from a shell.

A thin layer over the library: it parses the options, calls :mod:`skdigits`, and prints.
Run ``skdigits --help`` (or ``python -m skdigits --help``) and ``skdigits COMMAND --help``.

Examples
--------
.. code-block:: console

    $ skdigits predict photo.jpg scan.png                 # the bundled pretrained model
    $ skdigits predict --number cheque.png                # a number of several digits
    $ skdigits train --dataset my_digits/ --from pretrained --out mine.skd
    $ skdigits evaluate mine.skd --dataset my_digits/     # the images train held out
    $ skdigits benchmark --dataset mnist --n-samples 5000 --cv 3
"""

import argparse
import contextlib
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, classification_report
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline

from . import (
    PRESETS,
    CNNDigitClassifier,
    DigitNormalizer,
    __version__,
    check_model_path,
    datasets,
    fine_tune,
    load,
    load_pretrained,
    read_numbers,
    save,
)
from ._pretrained import FINE_TUNE_LR, _last_step
from .baselines import baseline_models, compare_models, format_scores

__all__ = ["main"]

_CNN_DEFAULTS = CNNDigitClassifier().get_params()
_DATASET_HELP = (
    "'digits' (scikit-learn's bundled 8x8 digits), 'mnist' (the MNIST IDX files in "
    "--data-home), 'usps' or 'semeion' (16x16 handwriting: their files in --data-home) or "
    "the path of a folder with one sub-folder of images per class"
)
# Named datasets that come with their own test set, and the others, whose held-out images
# train records by index.
_WITH_TEST_SET = {"mnist": "MNIST", "usps": "USPS"}
_BY_INDEX = ("digits", "semeion")
# Options of the classifier the command line sets, by their parameter names.
_CNN_OPTIONS = (
    "channels",
    "convs_per_stage",
    "n_networks",
    "max_epochs",
    "batch_size",
    "lr",
    "augment",
    "stroke_augment",
    "patience",
    "validation_fraction",
    "device",
)
# predict shows a progress bar over files from this many on, in chunks of this size.
PROGRESS_CHUNK = 64
# skorch's epoch table colours its best values with ANSI escape codes.
_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


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
        if getattr(args, "threads", None) is not None:
            _set_threads(args.threads)
        with _plain_output():
            args.run(args)
    except (OSError, ValueError, TypeError, ImportError) as exc:
        print(f"{parser.prog}: error: {_message(exc)}", file=sys.stderr)
        return 1
    return 0


def _message(exc):
    """Return the message of ``exc``, on one line, without the ``[Errno N]`` prefix."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return " ".join(str(exc).split())


def _set_threads(threads):
    """Set the number of threads torch computes with."""
    if threads < 1:
        raise ValueError(f"--threads must be at least 1; got {threads}")
    torch.set_num_threads(threads)


@contextlib.contextmanager
def _plain_output():
    """Strip colour codes from what is printed to stdout unless it is a terminal."""
    if sys.stdout.isatty():
        yield
        return

    class Plain:
        def __init__(self, stream):
            self.stream = stream

        def write(self, text):
            return self.stream.write(_ANSI_CODE.sub("", text))

        def __getattr__(self, name):
            return getattr(self.stream, name)

    with contextlib.redirect_stdout(Plain(sys.stdout)):
        yield


def _progress(iterable, args, **kwargs):
    """Return ``iterable`` wrapped in a progress bar when stderr is a terminal."""
    if args.quiet or not sys.stderr.isatty():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def _predict_proba(model, X):
    """Return the class probabilities of ``model`` for images or image files ``X``.

    A model trained by ``skdigits train`` starts with a DigitNormalizer and reads anything.
    A bare classifier (saved from Python) gets image files normalised into its image shape
    and MNIST's 0..255 pixels mapped onto the scale it learned; a colour one gets them read
    in colour and resized.
    """
    if isinstance(model, Pipeline):
        return model.predict_proba(X)
    if isinstance(X, list) and model.n_channels_ > 1:
        # A colour classifier reads the files in colour, resized to its image shape.
        shape = model.image_shape_
        X = np.stack([datasets.load_image(path, image_shape=shape, colour=True) for path in X])
        X = datasets.match_pixel_range(X, model.pixel_range_)
    elif isinstance(X, list):
        X = DigitNormalizer(image_shape=model.image_shape_).fit_transform(X) * 255
    elif X.dtype == np.uint8:
        X = datasets.match_pixel_range(X, model.pixel_range_)
    return model.predict_proba(X)


def _train(args):
    """Fit (or fine-tune) a model, report its best epoch, test accuracy and time, save it."""
    # Checked before training, which can take long, rather than when saving.
    check_model_path(args.out)
    base = None
    if args.from_model is not None:
        base = _load_model(args.from_model)
        if not isinstance(base, Pipeline):
            raise ValueError(
                f"{args.from_model} holds a bare classifier; --from needs a model written by "
                "skdigits train (it keeps the normalisation its weights were trained with)"
            )
        if args.image_shape is not None:
            raise ValueError("--image-shape cannot be changed when fine-tuning with --from")
    X, y = _load(args)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"{args.dataset} holds images of one class only ({classes[0]!r}); training needs "
            "at least two classes"
        )
    held_out = None
    if args.dataset in _WITH_TEST_SET:
        # MNIST and USPS come with their own test sets, used here for reporting only.
        X_train, y_train = X, y
        X_test, y_test = _load(args, "test")
        test_set = f"images of the {_WITH_TEST_SET[args.dataset]} test set"
    elif args.test_size > 0:
        train, test = train_test_split(
            np.arange(len(y)), test_size=args.test_size, stratify=y, random_state=args.random_state
        )
        X_train, y_train, X_test, y_test = _take(X, train), y[train], _take(X, test), y[test]
        held_out = _describe_held_out(args.dataset, X, test)
        test_set = "held-out images"
    else:
        X_train, y_train, X_test, y_test = X, y, None, None
    options = _cnn_options(args)
    start = time.perf_counter()
    if base is None:
        model = make_pipeline(
            DigitNormalizer(image_shape=args.image_shape),
            CNNDigitClassifier(**{**PRESETS[args.preset], **options}),
        )
        model.fit(X_train, y_train)
    else:
        model = fine_tune(base, X_train, y_train, **options)
    fit_time = time.perf_counter() - start
    clf = model[-1]
    print(f"best epoch: {clf.best_epoch_} of {clf.n_iter_}")
    if y_test is not None:
        print(f"test accuracy: {model.score(X_test, y_test):.4f} on {len(y_test)} {test_set}")
    print(f"fit time: {fit_time:.1f} s")
    save(model, args.out, metadata={"held_out": held_out} if held_out else None)
    print(f"model written to {args.out}")


def _load(args, subset="train"):
    """Return the images and labels of the dataset the command line names."""
    return datasets.load_dataset(args.dataset, subset, args.data_home, args.download)


def _cnn_options(args):
    """Return the classifier parameters given on the command line, and the fixed ones."""
    options = {
        name: getattr(args, name) for name in _CNN_OPTIONS if getattr(args, name) is not None
    }
    if "channels" in options:
        options["channels"] = tuple(options["channels"])
    convs = options.get("convs_per_stage")
    if convs is not None:
        # One number applies to every stage, as the parameter's int does.
        options["convs_per_stage"] = convs[0] if len(convs) == 1 else tuple(convs)
    quiet = args.quiet
    callbacks = []
    if not quiet and sys.stderr.isatty():
        from skorch.callbacks import ProgressBar

        callbacks.append(ProgressBar())
    return {
        **options,
        "random_state": args.random_state,
        "verbose": 0 if quiet else 1,
        "callbacks": callbacks or None,
    }


def _take(X, indices):
    """Return the images of ``X`` (an array or a list of files) at ``indices``."""
    return [X[i] for i in indices] if isinstance(X, list) else X[indices]


def _describe_held_out(dataset, X, test):
    """Return what a model file records of the images train held out, to evaluate on them."""
    if dataset in _BY_INDEX:
        return {"dataset": dataset, "indices": [int(i) for i in test]}
    root = Path(dataset).resolve()
    return {
        "dataset": str(root),
        "files": [Path(X[i]).resolve().relative_to(root).as_posix() for i in test],
    }


def _held_out(dataset, X, y, held_out):
    """Return ``(X, y)`` restricted to the images recorded as held out, or None if not these."""
    if not held_out:
        return None
    if dataset in _BY_INDEX and held_out.get("dataset") == dataset:
        indices = np.asarray(held_out["indices"], dtype=np.int64)
        if indices.size and not 0 <= indices.min() <= indices.max() < len(y):
            raise ValueError(
                f"the images held out when the model was trained include image {indices.max()} "
                f"of {dataset}, which now holds {len(y)} images"
            )
        return X[indices], y[indices]
    named = (*_BY_INDEX, *_WITH_TEST_SET)
    if dataset in named or str(Path(dataset).resolve()) != held_out.get("dataset"):
        return None
    root = Path(dataset).resolve()
    index = {Path(path).resolve().relative_to(root).as_posix(): i for i, path in enumerate(X)}
    missing = [name for name in held_out["files"] if name not in index]
    if missing:
        raise ValueError(
            f"{len(missing)} of the images held out when the model was trained are no longer "
            f"in {dataset}, e.g. {missing[0]}"
        )
    rows = [index[name] for name in held_out["files"]]
    return [X[i] for i in rows], y[rows]


def _evaluate(args):
    """Print the accuracy and classification report of a saved model on a dataset."""
    model, metadata = _load_model(args.model, return_metadata=True)
    X, y = _load(args, "test")
    if args.dataset in _WITH_TEST_SET:
        test_set = f"images of the {_WITH_TEST_SET[args.dataset]} test set"
    else:
        recorded = _held_out(args.dataset, X, y, metadata.get("held_out"))
        if recorded is not None:
            X, y = recorded
            test_set = f"images held out when {args.model} was trained"
        else:
            test_set = "images"
    proba = _predict_proba(model, X)
    y_pred = _last_step(model).classes_[proba.argmax(axis=1)]
    print(f"accuracy: {accuracy_score(y, y_pred):.4f} on {len(y)} {test_set}")
    # zero_division=0: a weak model that never predicts some class gets 0, not a warning.
    print(classification_report(y, y_pred, digits=4, zero_division=0))
    if args.confusion_matrix is not None:
        from .plotting import plot_confusion_matrix

        plot_confusion_matrix(_Predictions(y_pred), X, y, path=args.confusion_matrix)
        print(f"confusion matrix written to {args.confusion_matrix}")


class _Predictions:
    """Stands in for a classifier whose predictions are already known, for plotting."""

    def __init__(self, y_pred):
        self.y_pred = y_pred

    def predict(self, X):
        return self.y_pred


def _predict(args):
    """Print each image's path, predicted label (or number) and its probability."""
    for path in args.images:
        if _is_model_file(path):
            raise ValueError(f"{path} is a model file, not an image; pass it with --model {path}")
    model = _load_model(args.model) if args.model is not None else load_pretrained()
    ink = "dark" if args.invert else args.ink
    if ink is not None:
        if not isinstance(model, Pipeline):
            raise ValueError(f"{args.model} holds no DigitNormalizer to apply --ink to")
        model[0].set_params(ink=ink)
    classes = _last_step(model).classes_
    chunks = [
        args.images[start : start + PROGRESS_CHUNK]
        for start in range(0, len(args.images), PROGRESS_CHUNK)
    ]
    if len(chunks) > 1:
        chunks = _progress(chunks, args, unit="chunk", desc=f"{len(args.images)} images")
    for paths in chunks:
        if args.number:
            labels, probability = read_numbers(model, paths)
        else:
            proba = _predict_proba(model, paths)
            labels, probability = classes[proba.argmax(axis=1)], proba.max(axis=1)
        for path, label, p in zip(paths, labels, probability, strict=True):
            print(f"{path}\t{label}\t{p:.4f}")


def _is_model_file(path):
    """Return whether ``path`` holds a skdigits model (given where an image belongs)."""
    try:
        load(path)
    except (OSError, ValueError):
        return False
    return True


def _load_model(name, return_metadata=False):
    """Return the model ``name`` names: "pretrained" or a model file (and its metadata)."""
    if name == "pretrained":
        model = load_pretrained()
        return (model, {}) if return_metadata else model
    return load(name, return_metadata=return_metadata)


def _benchmark(args):
    """Print the cross-validated accuracy and fit time of the CNN and the baselines."""
    X, y = _load(args)
    if isinstance(X, list):
        # The baselines take rows of pixels of one size: folder images are normalised.
        X = DigitNormalizer(image_shape=args.image_shape).fit_transform(X)
    if args.n_samples is not None and args.n_samples < len(y):
        X, _, y, _ = train_test_split(
            X, y, train_size=args.n_samples, stratify=y, random_state=args.random_state
        )
    image_shape = X.shape[1:] if X.ndim == 3 else None
    X = X.reshape(len(X), -1)
    options = _cnn_options(args)
    models = {
        "CNNDigitClassifier": CNNDigitClassifier(
            # Cross-validation prints its own table: no epoch tables or bars per fit.
            **{**PRESETS[args.preset], **options, "verbose": 0, "callbacks": None},
            image_shape=image_shape,
        ),
        **baseline_models(args.random_state),
    }
    print(f"{args.cv}-fold cross-validation on {len(y)} images of {args.dataset}")
    print(format_scores(compare_models(models, X, y, cv=args.cv)))


def _parser():
    """Return the argument parser of the ``skdigits`` command and its sub-commands."""
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--dataset", default="digits", metavar="NAME", help=f"{_DATASET_HELP} (default: digits)"
    )
    data.add_argument(
        "--data-home",
        metavar="DIR",
        help="folder holding the MNIST, USPS or Semeion files (default: $SKDIGITS_DATA or "
        "~/skdigits_data)",
    )
    data.add_argument(
        "--download",
        action="store_true",
        help="download the MNIST, USPS or Semeion files into --data-home if they are missing",
    )

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="number of CPU threads torch computes with (default: torch's choice)",
    )
    common.add_argument(
        "--quiet", action="store_true", help="print no progress bars and no epoch table"
    )

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="fast",
        help="hyperparameters to start from: 'fast' (the defaults) or 'accurate' (two deeper "
        "networks with augmentation, about 15x slower; see BENCHMARKS.md) (default: fast)",
    )
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
        "--stroke-augment",
        type=float,
        metavar="X",
        help=_default("strength of random stroke-width changes, 0 (none) to 1", "stroke_augment"),
    )
    model.add_argument(
        "--channels",
        type=int,
        nargs="+",
        metavar="N",
        help=_default("output channels of each convolutional stage", "channels"),
    )
    model.add_argument(
        "--convs-per-stage",
        type=int,
        nargs="+",
        metavar="N",
        help=_default(
            "convolutions in each stage: one number for all, or one per stage",
            "convs_per_stage",
        ),
    )
    model.add_argument(
        "--n-networks",
        type=int,
        metavar="N",
        help=_default(
            "networks trained side by side and averaged (a soft-voting ensemble)", "n_networks"
        ),
    )
    model.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help=_default("epochs without improvement before stopping early", "patience"),
    )
    model.add_argument(
        "--validation-fraction",
        type=float,
        metavar="X",
        help=_default(
            "share of the training images held out for early stopping", "validation_fraction"
        ),
    )
    model.add_argument(
        "--image-shape",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="height and width the images are normalised to (default: learned from the "
        "dataset: 28 28 for MNIST and folders, 16 16 for USPS and Semeion, 8 8 for the "
        "bundled digits)",
    )
    model.add_argument(
        "--device",
        metavar="NAME",
        help=_default("torch device: cpu, cuda, cuda:N or auto", "device"),
    )
    model.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="N",
        help="seed of the data split and the models (default: 0)",
    )

    parser = argparse.ArgumentParser(
        prog="skdigits",
        description="Train, evaluate and use a convolutional neural network for digit images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        parents=[data, model, common],
        help="train a model (or fine-tune one) and save it as a model file",
        description="Train a DigitNormalizer and CNNDigitClassifier pipeline, print its "
        "per-epoch progress, best epoch, test accuracy and fit time, and save it as a model "
        "file that reads image files of any size. With no options it trains on the bundled "
        "8x8 digits in seconds. Images of a folder may differ in size: each is normalised as "
        "MNIST was made. On small datasets the epochs, batch size, patience and augmentation "
        "adapt to the number of images (see the user guide). With --from, the model starts "
        "from a trained model's weights (fine-tuning, with a peak learning rate of "
        f"{FINE_TUNE_LR:g} unless --lr is given) and keeps its normalisation; a new output "
        "layer is trained where the classes differ.",
    )
    train.add_argument(
        "--from",
        dest="from_model",
        metavar="MODEL",
        help="fine-tune this model instead of training a new one: 'pretrained' (the bundled "
        "model) or a model file",
    )
    train.add_argument(
        "--out",
        default="digits-model.skd",
        metavar="PATH",
        help="model file to write (default: digits-model.skd)",
    )
    train.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        metavar="X",
        help="share of the bundled digits, Semeion or an image folder held out, stratified, "
        "for testing, and recorded in the model file for evaluate; 0 trains on every image. "
        "MNIST and USPS use their own test sets (default: 0.2)",
    )
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[data],
        help="print the accuracy and classification report of a model file",
        description="Print 'accuracy: A on N images' and the per-class report of a saved "
        "model. MNIST is evaluated on its test set. On the dataset a model was trained on, "
        "only the images train held out are used, as recorded in the model file; any other "
        "folder is evaluated whole. Folders whose sub-folders are all named by integers have "
        "integer labels, so a folder 0..9 scores against MNIST-trained models.",
    )
    evaluate.add_argument("model", metavar="MODEL", help="model file, or 'pretrained'")
    evaluate.add_argument(
        "--confusion-matrix", metavar="PNG", help="also save a confusion-matrix plot to PNG"
    )
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="print the predicted digit (or number) of image files",
        description="Print 'path<TAB>label<TAB>probability' for each image file. Images of "
        "any size and kind (photos, scans, drawings; PNG, JPEG, ...) are normalised as MNIST "
        "was made: the ink is found (dark on light or light on dark, decided per image), "
        "cropped, scaled and centred. Without --model, the bundled pretrained model is used.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    predict.add_argument(
        "--model", metavar="MODEL", help="model file to use (default: the pretrained model)"
    )
    predict.add_argument(
        "--number",
        action="store_true",
        help="read a number written on one line (several digits, left to right): the label is "
        "the digit string and the probability the product of the digits' probabilities",
    )
    predict.add_argument(
        "--ink",
        choices=("auto", "dark", "light"),
        help="whether the ink is darker or lighter than the paper (default: decided per image)",
    )
    predict.add_argument(
        "--invert", action="store_true", help="same as --ink dark: dark ink on light paper"
    )
    predict.set_defaults(run=_predict)

    benchmark = commands.add_parser(
        "benchmark",
        parents=[data, model, common],
        help="cross-validate the CNN next to scikit-learn baselines",
        description="Cross-validate CNNDigitClassifier, logistic regression, an RBF SVC and a "
        "multi-layer perceptron on the same folds, and print each model's mean accuracy, its "
        "standard deviation and the mean fit time. Folder images are normalised first.",
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
