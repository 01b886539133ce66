"""How well the probabilities are calibrated, before and after temperature scaling.

For each seed, CNNDigitClassifier(random_state=seed) (calibrate=True, the default) is fitted
on the 60,000 MNIST training images and scored on the 10,000 test images; and on a held-out
quarter of scikit-learn's 8x8 digits. "Before" is the same network with its temperature set
back to 1, which is what skdigits 0.1 predicted: calibration changes no prediction, only
the probabilities. Reported: accuracy, expected calibration error (ECE, 15 equal-width bins
of confidence), log loss, mean confidence, and the largest deviation of a row sum from 1.

    python benchmarks/calibration.py                  # seeds 0 1 2
    python benchmarks/calibration.py --seeds 0 --data digits --json results.json

Not part of the unit tests: each seed trains on full MNIST (about a minute).
"""

import argparse
import itertools
import json
import platform
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from skdigits import CNNDigitClassifier
from skdigits.datasets import load_digits, load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
BINS = 15


def expected_calibration_error(proba, y, bins=BINS):
    """Return the ECE: the mean gap between confidence and accuracy, over confidence bins."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    error = 0.0
    for low, high in itertools.pairwise(np.linspace(0, 1, bins + 1)):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return error


def figures(clf, X, y):
    """Return accuracy, ECE, log loss, mean confidence and row-sum error of ``clf`` on X."""
    proba = clf.predict_proba(X)
    labels = np.searchsorted(clf.classes_, y)
    return {
        "accuracy": float(np.mean(proba.argmax(axis=1) == labels)),
        "ece": expected_calibration_error(proba, labels),
        "log_loss": log_loss(labels, proba, labels=np.arange(len(clf.classes_))),
        "confidence": float(proba.max(axis=1).mean()),
        "row_sum_error": float(np.abs(proba.sum(axis=1) - 1).max()),
    }


def before_and_after(clf, X, y):
    """Return the figures with the temperature of 1 (before) and the fitted one (after)."""
    fitted = clf.temperature_
    clf.temperature_ = 1.0
    before = figures(clf, X, y)
    clf.temperature_ = fitted
    return {"temperature": fitted, "before": before, "after": figures(clf, X, y)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", default=["mnist", "digits"], help="data sets")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads"
    )
    results = {name: [] for name in args.data}
    for seed in args.seeds:
        if "mnist" in results:
            X_train, y_train = load_mnist("train", args.data_home)
            X_test, y_test = load_mnist("test", args.data_home)
            clf = CNNDigitClassifier(random_state=seed).fit(X_train, y_train)
            results["mnist"].append(before_and_after(clf, X_test, y_test))
        if "digits" in results:
            X, y = load_digits()
            split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
            clf = CNNDigitClassifier(random_state=seed).fit(split[0], split[2])
            results["digits"].append(before_and_after(clf, split[1], split[3]))
        print(f"seed {seed}: " + json.dumps({k: v[-1] for k, v in results.items()}))
    print(
        f"\n| data | | accuracy | ECE ({BINS} bins) | log loss | mean confidence | temperature |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for data, runs in results.items():
        temperature = [run["temperature"] for run in runs]
        for when in ("before", "after"):
            cells = []
            for name, scale in (("accuracy", 100), ("ece", 1), ("log_loss", 1), ("confidence", 1)):
                values = np.array([run[when][name] for run in runs]) * scale
                cells.append(f"{values.mean():.4f} +- {values.std():.4f}")
            shown = f"{np.mean(temperature):.3f}" if when == "after" else "1"
            print(f"| {data} | {when} | " + " | ".join(cells) + f" | {shown} |")
    worst = max(run["after"]["row_sum_error"] for runs in results.values() for run in runs)
    print(f"\nlargest |row sum - 1| after calibration: {worst:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
