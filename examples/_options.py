"""Options and data shared by the examples; not an example itself.

Every example runs in seconds on scikit-learn's bundled 8x8 digits by default. ``--mnist``
switches to MNIST, read from ``--data-home`` (default: ``shared/data/mnist`` beside the
repository), and ``--full`` uses all of MNIST and the slower settings that reach the best
accuracy.
"""

import argparse
from pathlib import Path

from sklearn.model_selection import train_test_split

from skdigits.datasets import load_dataset

MNIST_HOME = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
# Without --full, MNIST is cut to this many training and test images to keep examples quick.
FAST_MNIST_TRAIN, FAST_MNIST_TEST = 5000, 1000


def parse_options(doc):
    """Return the example's command-line options; ``doc`` is its docstring, for --help."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mnist", action="store_true", help="use MNIST, not the 8x8 digits")
    parser.add_argument(
        "--data-home", default=MNIST_HOME, help=f"MNIST folder (default: {MNIST_HOME})"
    )
    parser.add_argument("--full", action="store_true", help="slower, more accurate settings")
    return parser.parse_args()


def load_data(options):
    """Return ``X_train, X_test, y_train, y_test`` of the dataset the options choose.

    The bundled digits are split 75/25, stratified; MNIST comes with its own test set.
    """
    if not options.mnist:
        X, y = load_dataset("digits")
        return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    X_train, y_train = load_dataset("mnist", "train", options.data_home)
    X_test, y_test = load_dataset("mnist", "test", options.data_home)
    if not options.full:
        X_train, y_train = _subset(X_train, y_train, FAST_MNIST_TRAIN)
        X_test, y_test = _subset(X_test, y_test, FAST_MNIST_TEST)
    return X_train, X_test, y_train, y_test


def _subset(X, y, n):
    """Return a stratified random subset of ``n`` images."""
    X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=0)
    return X, y
