"""ONNX against torch: predict throughput of the same model, and what each needs installed.

Fits the default CNNDigitClassifier on 10,000 MNIST training images (2 epochs), converts it
with skl2onnx (``import skdigits.onnx``), and predicts the 10,000 test images repeated
``--repeat`` times with ``clf.predict`` (torch) and with an onnxruntime session, in the same
process, the faster of ``--runs`` runs each. Then sums the installed size of the packages each
route needs to predict, from this environment's site-packages.

    python benchmarks/onnx_export.py
"""

import argparse
import importlib.metadata
import time
from pathlib import Path

import numpy as np
import onnxruntime
import skl2onnx
import torch

import skdigits.onnx  # noqa: F401  (registers the converters)
from skdigits import CNNDigitClassifier
from skdigits.datasets import load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
# What predicting needs besides numpy, per route (torch's CUDA libraries come with the
# default wheel from PyPI, and are counted).
TORCH_ROUTE = ["torch", "skorch", "scikit-learn", "scipy", "nvidia-*", "triton"]
ONNX_ROUTE = ["onnxruntime"]


def installed_megabytes(patterns):
    """Return the size on disk of the installed distributions matching ``patterns``."""
    total = 0
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower()
        if any(Path(name).match(pattern) for pattern in patterns):
            for file in dist.files or []:
                path = Path(dist.locate_file(file))
                if path.is_file():
                    total += path.stat().st_size
    return total / 1e6


def best_rate(predict, X, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predict(X)
        times.append(time.perf_counter() - start)
    return len(X) / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    X_train, y_train = load_mnist("train", args.data_home)
    X_test, _ = load_mnist("test", args.data_home)
    clf = CNNDigitClassifier(max_epochs=2, random_state=0).fit(X_train[:10_000], y_train[:10_000])
    X = np.concatenate([X_test] * args.repeat)

    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    session = onnxruntime.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    labels = session.run(None, {name: X})[0]
    print(f"{len(X):,} images; labels equal: {bool(np.array_equal(labels, clf.predict(X)))}")
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {onnxruntime.__version__}"
    )

    torch_rate = best_rate(clf.predict, X, args.runs)
    onnx_rate = best_rate(lambda X: session.run(None, {name: X}), X, args.runs)
    torch_size, onnx_size = installed_megabytes(TORCH_ROUTE), installed_megabytes(ONNX_ROUTE)
    print("| route | predict (images/s) | vs. torch | installed for predicting |")
    print("| --- | --- | --- | --- |")
    print(f"| torch (`clf.predict`) | {torch_rate:,.0f} | 1.00x | {torch_size:,.0f} MB |")
    print(
        f"| onnxruntime | {onnx_rate:,.0f} | {onnx_rate / torch_rate:.2f}x | {onnx_size:,.0f} MB |"
    )


if __name__ == "__main__":
    main()
