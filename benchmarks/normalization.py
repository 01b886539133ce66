"""What normalising MNIST with DigitNormalizer costs: the same classifier with and without it.

For each seed, CNNDigitClassifier(random_state=seed) is fitted on the 60,000 MNIST training
images as they are, and make_pipeline(DigitNormalizer(), CNNDigitClassifier(random_state=seed))
on the same images; both are scored on the 10,000 test images. MNIST was made with the
normalisation DigitNormalizer applies, so the pipeline should lose (almost) nothing:

    python benchmarks/normalization.py                  # seeds 0 1 2 3, default classifier
    python benchmarks/normalization.py --seeds 0 --json results.json

Not part of the unit tests: each seed trains two models on full MNIST (a few minutes).
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import make_pipeline

from skdigits import CNNDigitClassifier, DigitNormalizer
from skdigits.datasets import load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads"
    )
    X_train, y_train = load_mnist("train", args.data_home)
    X_test, y_test = load_mnist("test", args.data_home)

    normalizer = DigitNormalizer()
    start = time.perf_counter()
    N_train = normalizer.fit_transform(X_train)
    normalize_time = time.perf_counter() - start
    N_test = normalizer.transform(X_test)
    print(
        f"normalising 60,000 images: {normalize_time:.1f} s; learned framing: "
        f"{normalizer.image_shape_}, box {normalizer.box_}, {normalizer.centering_}-centred"
    )

    rows = []
    for seed in args.seeds:
        raw = CNNDigitClassifier(random_state=seed).fit(X_train, y_train).score(X_test, y_test)
        # The normaliser is fitted once above: fitting it is deterministic, so the pipeline
        # would compute the very same arrays for each seed.
        pipeline = make_pipeline(normalizer, CNNDigitClassifier(random_state=seed))
        pipeline[-1].fit(N_train, y_train)
        normalized = pipeline[-1].score(N_test, y_test)
        rows.append({"seed": seed, "raw": raw, "normalized": normalized})
        print(
            f"seed {seed}: raw {100 * raw:.2f}%, normalised {100 * normalized:.2f}%, "
            f"difference {100 * (normalized - raw):+.2f} points",
            flush=True,
        )
    raw = np.array([row["raw"] for row in rows])
    normalized = np.array([row["normalized"] for row in rows])
    diff = normalized - raw
    print(
        f"mean over seeds: raw {100 * raw.mean():.2f}% (sd {100 * raw.std():.2f}), "
        f"normalised {100 * normalized.mean():.2f}% (sd {100 * normalized.std():.2f}), "
        f"difference {100 * diff.mean():+.3f} points (from {100 * diff.min():+.2f} to "
        f"{100 * diff.max():+.2f})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"normalize_time_s": normalize_time, "per_seed": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
