"""The default classifier on other digit data than full MNIST: held-out accuracy per seed.

Data sets, each scored on held-out images:

- the 8x8 digits, 5-fold stratified cross-validation;
- MNIST downsampled to 16x16 and to 8x8 (area averaging), 60,000 train / 10,000 test;
- MNIST subsets of 1,000 and 3,000 training images (stratified), scored on the full test set;
- binarised MNIST (pixels > 127), full train and test;
- two stand-ins for handwriting collected elsewhere, whose digits fill a 16x16 frame: each
  MNIST digit is cut to its bounding box and resized to fill 16x16. "usps-like": the box
  keeps its aspect ratio, grey levels on a -1..1 scale, 7,291 training images (stratified),
  scored on the 10,000 test images made the same way. "semeion-like": the box is stretched
  to the whole frame, binarised at half the ink, 1,593 images (stratified), 5-fold
  stratified cross-validation.

Not run by default: "digits-50", "digits-200" and "digits-500", a stratified subset of that
many of the 8x8 digits to train on, the other images scored, for a small collection of
one's own. And, where their files are at hand or can be downloaded (``--held-out-home``,
``--download``; read by ``load_usps`` and ``load_semeion``; not run by default), the two
collections the stand-ins stand for: USPS (7,291 training and 2,007 test images) and
Semeion (1,593 images, 5-fold stratified cross-validation).

``--from pretrained`` fine-tunes the bundled model on each training set
(``skdigits.fine_tune``, what ``skdigits train --from pretrained`` does) instead of training
a new classifier. That model learned MNIST's training images, so the MNIST-based sets must
then be made with ``--test-writers``: the stand-ins from MNIST's 10,000 test images, whose
writers are not those of the training images (usps-like: 7,291 to train on, the other
2,709 scored; semeion-like: 1,593 of them). Without ``--from``, ``--test-writers`` gives the
from-scratch figures on the same images.

    python benchmarks/other_data.py                 # seeds 0 1
    python benchmarks/other_data.py --seeds 0 --data digits mnist-1000
    python benchmarks/other_data.py --params '{"augment": 1.0}'   # other parameters
    python benchmarks/other_data.py --data usps semeion --download --seeds 0 1 2 3
    python benchmarks/other_data.py --data usps-like semeion-like --test-writers --from pretrained
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.model_selection import StratifiedKFold, train_test_split

import skdigits
from skdigits import CNNDigitClassifier
from skdigits.datasets import load_digits, load_mnist, load_semeion, load_usps

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DATA = [
    "digits",
    "mnist-16x16",
    "mnist-8x8",
    "mnist-1000",
    "mnist-3000",
    "mnist-binary",
    "usps-like",
    "semeion-like",
]
# The collections the two stand-ins stand for, read from --held-out-home.
HELD_OUT = ["usps", "semeion"]
# A few of the 8x8 digits to train on, the rest scored: what a user's own small collection is.
FEW_DIGITS = ["digits-50", "digits-200", "digits-500"]
# The sets not made from MNIST's images.
NOT_MNIST = ["digits", *FEW_DIGITS, *HELD_OUT]
# The sets --test-writers can make from MNIST's test images.
STAND_INS = ["usps-like", "semeion-like"]
# Sizes of the two stand-ins: the training set of USPS and the whole of Semeion.
USPS_TRAIN = 7291
SEMEION_SIZE = 1593


def downsample(X, side):
    """Return 28x28 images averaged down to ``side`` x ``side`` (28 must be a multiple)."""
    images = X.reshape(-1, 28, 28).astype(np.float32)
    if 28 % side:
        images = np.pad(images, ((0, 0), (0, 4), (0, 4)))  # 32x32 for 16x16 and 8x8
    factor = images.shape[1] // side
    return images.reshape(-1, side, factor, side, factor).mean(axis=(2, 4))


def fill_frame(X, side=16, keep_aspect=True):
    """Return 28x28 images cut to their digit's bounding box and resized to fill the frame.

    With ``keep_aspect`` the box's longer side becomes ``side`` and the digit is centred;
    without, the box is stretched to the whole frame. Grey levels stay 0..255 (float32).
    """
    out = np.zeros((len(X), side, side), dtype=np.float32)
    for i, image in enumerate(X.reshape(-1, 28, 28)):
        rows, cols = np.nonzero(image)
        box = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        h, w = box.shape
        if keep_aspect:
            scale = side / max(h, w)
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
        else:
            h, w = side, side
        resized = np.asarray(Image.fromarray(box).resize((w, h), Image.BILINEAR))
        top, left = (side - h) // 2, (side - w) // 2
        out[i, top : top + h, left : left + w] = resized
    return out


def subset(X, y, n, seed):
    """Return a stratified subset of ``n`` images."""
    X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
    return X, y


def score(name, seed, mnist, base, args):
    """Return the held-out accuracies on data set ``name``, as ``fit_score`` does.

    With a fitted ``base`` model, each training set fine-tunes a copy of it instead of
    training a new classifier. With ``args.test_writers``, the stand-ins are made from
    MNIST's test images (``mnist`` then holds those alone).
    """
    params, held_out_home, download = args.params, args.held_out_home, args.download
    if name in ("digits", "semeion"):
        X, y = load_digits() if name == "digits" else load_semeion(held_out_home, download)
        return cross_validate(X, y, seed, params, base)
    if name in FEW_DIGITS:
        X, y = load_digits()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, train_size=int(name[7:]), stratify=y, random_state=seed
        )
        return fit_score(X_train, y_train, X_test, y_test, seed, params, base)
    if name == "usps":
        X_train, y_train = load_usps("train", held_out_home, download)
        X_test, y_test = load_usps("test", held_out_home, download)
        return fit_score(X_train, y_train, X_test, y_test, seed, params, base)
    X_train, y_train, X_test, y_test = mnist
    if name == "usps-like":
        if args.test_writers:
            X_train, X_test, y_train, y_test = train_test_split(
                X_test, y_test, train_size=USPS_TRAIN, stratify=y_test, random_state=seed
            )
        else:
            X_train, y_train = subset(X_train, y_train, USPS_TRAIN, seed)
        X_train, X_test = fill_frame(X_train) / 127.5 - 1, fill_frame(X_test) / 127.5 - 1
    elif name == "semeion-like":
        X, y = subset(X_train, y_train, SEMEION_SIZE, seed)
        X = fill_frame(X, keep_aspect=False) >= 127.5
        return cross_validate(X, y, seed, params, base)
    if name.startswith("mnist-") and name[6:].isdigit():
        X_train, y_train = subset(X_train, y_train, int(name[6:]), seed)
    elif name == "mnist-16x16":
        X_train, X_test = downsample(X_train, 16), downsample(X_test, 16)
    elif name == "mnist-8x8":
        X_train, X_test = downsample(X_train, 8), downsample(X_test, 8)
    elif name == "mnist-binary":
        X_train, X_test = X_train > 127, X_test > 127
    return fit_score(X_train, y_train, X_test, y_test, seed, params, base)


def fit_score(X_train, y_train, X_test, y_test, seed, params, base):
    """Return the test accuracy of a classifier trained (or ``base`` fine-tuned) on the rest.

    An array: that accuracy and, with ``base``, the accuracy of ``base`` as it is.
    """
    if base is None:
        model = CNNDigitClassifier(random_state=seed, **params).fit(X_train, y_train)
        return np.array([model.score(X_test, y_test)])
    model = skdigits.fine_tune(
        base, X_train, y_train, **{"random_state": seed, "verbose": 0, **params}
    )
    return np.array([model.score(X_test, y_test), base.score(X_test, y_test)])


def cross_validate(X, y, seed, params, base):
    """Return the mean accuracies of ``fit_score`` over 5 stratified folds."""
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = [fit_score(X[a], y[a], X[b], y[b], seed, params, base) for a, b in folds.split(X, y)]
    return np.mean(scores, axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data", nargs="+", default=DATA, choices=DATA + FEW_DIGITS + HELD_OUT)
    parser.add_argument(
        "--held-out-home",
        help="folder with the USPS and Semeion files (default: $SKDIGITS_DATA or ~/skdigits_data)",
    )
    parser.add_argument(
        "--download", action="store_true", help="download the USPS and Semeion files if missing"
    )
    parser.add_argument(
        "--params", type=json.loads, default={}, help="JSON of CNNDigitClassifier parameters"
    )
    parser.add_argument(
        "--from",
        dest="from_model",
        metavar="MODEL",
        help="fine-tune this model on each training set instead of training a new classifier: "
        "'pretrained' (the bundled model) or a model file",
    )
    parser.add_argument(
        "--test-writers",
        action="store_true",
        help="make the stand-ins from MNIST's test images, whose writers the training images "
        "lack (needed for them with --from pretrained)",
    )
    args = parser.parse_args()
    mnist_based = [name for name in args.data if name not in NOT_MNIST]
    if args.test_writers and set(mnist_based) - set(STAND_INS):
        parser.error(f"--test-writers makes only the stand-ins ({', '.join(STAND_INS)})")
    if args.from_model is not None and mnist_based and not args.test_writers:
        parser.error(
            "--from scores MNIST-based sets only with --test-writers: the bundled model "
            "learned MNIST's training images"
        )
    base = None
    if args.from_model == "pretrained":
        base = skdigits.load_pretrained()
    elif args.from_model is not None:
        base = skdigits.load(args.from_model)
    mnist = None
    if mnist_based:
        X_train, y_train = load_mnist("train", args.data_home)
        X_test, y_test = load_mnist("test", args.data_home)
        mnist = (X_train, y_train, X_test, y_test)
        if args.test_writers:
            # The stand-ins take their images from the test set alone.
            mnist = (X_test, y_test, X_test, y_test)
    if args.from_model is not None:
        print(f"fine-tuned from: {args.from_model}")
    if args.test_writers:
        print("stand-ins made from MNIST's test images")
    if args.params:
        print(f"CNNDigitClassifier parameters: {json.dumps(args.params)}")
    as_is = ""
    if base is not None:
        # What the model reads of the same images before fine-tuning.
        as_is = f" {args.from_model} as it is: per seed | mean |"
    print(f"| data | held-out accuracy per seed | mean | time per seed |{as_is}")
    print("| --- | --- | --- | --- |" + " --- | --- |" * bool(as_is))
    for name in args.data:
        start = time.perf_counter()
        scores = [score(name, seed, mnist, base, args) for seed in args.seeds]
        took = (time.perf_counter() - start) / len(args.seeds)
        row = f"| {name} | {percents(scores, 0)} | {took:.0f} s |"
        if base is not None:
            row += f" {percents(scores, 1)} |"
        print(row, flush=True)


def percents(scores, column):
    """Return one column of the seeds' scores as "a, b, c% | mean%"."""
    values = [100 * s[column] for s in scores]
    return ", ".join(f"{v:.2f}%" for v in values) + f" | {np.mean(values):.2f}%"


if __name__ == "__main__":
    main()
