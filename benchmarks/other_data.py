"""The default classifier on other digit data than full MNIST: held-out accuracy per seed.

Data sets, each scored on held-out images:

- the 8x8 digits, 5-fold stratified cross-validation;
- MNIST downsampled to 16x16 and to 8x8 (area averaging), 60,000 train / 10,000 test;
- MNIST subsets of 1,000 and 3,000 training images (stratified), scored on the full test set;
- binarised MNIST (pixels > 127), full train and test.

    python benchmarks/other_data.py                 # seeds 0 1
    python benchmarks/other_data.py --seeds 0 --data digits mnist-1000
"""

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

from skdigits import CNNDigitClassifier
from skdigits.datasets import load_digits, load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DATA = ["digits", "mnist-16x16", "mnist-8x8", "mnist-1000", "mnist-3000", "mnist-binary"]


def downsample(X, side):
    """Return 28x28 images averaged down to ``side`` x ``side`` (28 must be a multiple)."""
    images = X.reshape(-1, 28, 28).astype(np.float32)
    if 28 % side:
        images = np.pad(images, ((0, 0), (0, 4), (0, 4)))  # 32x32 for 16x16 and 8x8
    factor = images.shape[1] // side
    return images.reshape(-1, side, factor, side, factor).mean(axis=(2, 4))


def score(name, seed, mnist):
    """Return the held-out accuracy of the default classifier on data set ``name``."""
    clf = CNNDigitClassifier(random_state=seed)
    if name == "digits":
        X, y = load_digits()
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        return cross_val_score(clf, X, y, cv=folds).mean()
    X_train, y_train, X_test, y_test = mnist
    if name.startswith("mnist-") and name[6:].isdigit():
        n = int(name[6:])
        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, train_size=n, stratify=y_train, random_state=seed
        )
    elif name == "mnist-16x16":
        X_train, X_test = downsample(X_train, 16), downsample(X_test, 16)
    elif name == "mnist-8x8":
        X_train, X_test = downsample(X_train, 8), downsample(X_test, 8)
    elif name == "mnist-binary":
        X_train, X_test = X_train > 127, X_test > 127
    return clf.fit(X_train, y_train).score(X_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data", nargs="+", default=DATA, choices=DATA)
    args = parser.parse_args()
    X_train, y_train = load_mnist("train", args.data_home)
    X_test, y_test = load_mnist("test", args.data_home)
    mnist = (X_train, y_train, X_test, y_test)
    print("| data | held-out accuracy per seed | mean | time per fit |")
    print("| --- | --- | --- | --- |")
    for name in args.data:
        start = time.perf_counter()
        scores = [score(name, seed, mnist) for seed in args.seeds]
        took = (time.perf_counter() - start) / len(args.seeds)
        each = ", ".join(f"{100 * s:.2f}%" for s in scores)
        print(f"| {name} | {each} | {100 * np.mean(scores):.2f}% | {took:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
