"""Colour digits: the 8x8 digits drawn in random ink and paper colours, held-out accuracy.

Each digit gets a random ink colour and a random paper colour (uniform in RGB, so some pairs
are nearly the same colour); the default CNNDigitClassifier is fitted on a stratified 75% as
(n, 8, 8, 3) arrays and scored on the rest, for each seed; the grey digits alone are scored
the same way for comparison.

    python benchmarks/colour.py              # seeds 0 1 2
"""

import argparse

import numpy as np
from sklearn.model_selection import train_test_split

from skdigits import CNNDigitClassifier
from skdigits.datasets import load_digits


def colour_digits(X, seed):
    """Return the 8x8 digits in a random ink colour on a random paper colour each."""
    rng = np.random.default_rng(seed)
    ink, paper = rng.random((2, len(X), 1, 1, 3))
    strokes = (X / 16).reshape(-1, 8, 8, 1)
    return (paper * (1 - strokes) + ink * strokes).astype(np.float32)


def held_out_accuracy(X, y, seed):
    split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    clf = CNNDigitClassifier(random_state=seed).fit(split[0], split[2])
    return clf.score(split[1], split[3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    X, y = load_digits()
    colour = [held_out_accuracy(colour_digits(X, seed), y, seed) for seed in args.seeds]
    grey = [held_out_accuracy(X, y, seed) for seed in args.seeds]
    print("| images | held-out accuracy per seed | mean +- std |")
    print("| --- | --- | --- |")
    for name, scores in (("colour (random ink and paper)", colour), ("grey", grey)):
        each = ", ".join(f"{100 * s:.2f}%" for s in scores)
        print(f"| {name} | {each} | {100 * np.mean(scores):.2f}% +- {100 * np.std(scores):.2f} |")


if __name__ == "__main__":
    main()
