"""Benchmark on full MNIST on one CUDA GPU: time to 99.5% test accuracy.

Trains on the 60,000 training images and measures test accuracy on the 10,000 test images
after every epoch (the time spent measuring it is not counted), as benchmarks/mnist.py does
on the CPU. CNNDigitClassifier keeps the data on the GPU: the images are copied there once
per fit, and each batch is gathered there, with no copy from the host per batch and no
per-sample loader. The baseline is the Keras tutorial's network in plain skorch on the same
GPU, with skorch's default loader (one sample at a time, a host-to-GPU copy per batch).
Before the timed runs, one short fit of each warms up CUDA and cuDNN, so that their one-time
start-up is not counted.

    python benchmarks/gpu.py                         # baseline, then the defaults, seed 0
    python benchmarks/gpu.py --seeds 0 1 2           # the defaults over three seeds
    python benchmarks/gpu.py --params '{"batch_size": 1024, "lr": 0.01}' --params '{}'
    python benchmarks/gpu.py --data-home DIR --json results.json

Not part of the unit tests: it needs a CUDA GPU.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skdigits import CNNDigitClassifier
from skdigits.datasets import load_mnist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import (  # noqa: E402
    DATA_HOME,
    TestAccuracyClock,
    as_tutorial,
    spread,
    time_to,
    tutorial_net,
)

TARGETS = (0.99, 0.995)


def run(name, estimator, X_train, y_train, X_test, y_test, seed):
    """Fit ``estimator`` with a test-accuracy clock; return its figures as a dict."""
    clock = TestAccuracyClock(X_test, y_test)
    estimator.set_params(callbacks=[clock])
    torch.manual_seed(seed)
    torch.cuda.synchronize()
    begin = time.perf_counter()
    estimator.fit(X_train, y_train)
    torch.cuda.synchronize()
    fit_time = time.perf_counter() - begin - clock.measuring_
    history = estimator.history_ if hasattr(estimator, "history_") else estimator.history
    return {
        "model": name,
        "seed": seed,
        "epochs": len(history),
        "test_accuracy": float(np.mean(estimator.predict(X_test) == y_test)),
        "fit_time": fit_time,
        **{f"time_to_{100 * t:g}": time_to(history, t) for t in TARGETS},
        "test_acc_per_epoch": [row["test_acc"] for row in history],
    }


def seconds(value):
    return "not reached" if value is None else f"{value:.2f} s"


def print_summary(results):
    """Print each model's mean and standard deviation over its seeds."""
    print("\n| model | seeds | test accuracy | fit time | time to 99.0% | time to 99.5% |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in dict.fromkeys(r["model"] for r in results):
        runs = [r for r in results if r["model"] == name]
        print(
            f"| {name} | {', '.join(str(r['seed']) for r in runs)} | "
            f"{spread(runs, 'test_accuracy', scale=100, unit='%')} | "
            + " | ".join(
                spread(runs, key, unit=" s") for key in ("fit_time", "time_to_99", "time_to_99.5")
            )
            + " |"
        )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-home", type=Path, default=DATA_HOME)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--params",
        type=json.loads,
        action="append",
        help="JSON of CNNDigitClassifier parameters; repeat to compare several (default: {})",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args()
    if torch.device(options.device).type != "cuda" or not torch.cuda.is_available():
        parser.error(f"device {options.device!r} is not an available CUDA GPU")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(options.device)}", flush=True)
    X_train, y_train = load_mnist("train", data_home=options.data_home)
    X_test, y_test = load_mnist("test", data_home=options.data_home)

    # Warm-ups: CUDA's context, cuDNN's kernels, the first bfloat16 autocast.
    tutorial_net(options.device, max_epochs=1, verbose=0).fit(
        as_tutorial(X_train[:2000]), y_train[:2000]
    )
    CNNDigitClassifier(device=options.device, max_epochs=1, random_state=0).fit(
        X_train[:2000], y_train[:2000]
    )

    results = []
    if not options.no_baseline:
        # skorch's default loader: one sample at a time, a host-to-GPU copy per batch.
        estimator = tutorial_net(options.device, verbose=0)
        results.append(
            run(
                "baseline",
                estimator,
                as_tutorial(X_train),
                y_train,
                as_tutorial(X_test),
                y_test,
                0,
            )
        )
        print(json.dumps(results[-1]), flush=True)
    for params in options.params or [{}]:
        for seed in options.seeds:
            estimator = CNNDigitClassifier(device=options.device, random_state=seed, **params)
            name = "defaults" if not params else json.dumps(params)
            results.append(run(name, estimator, X_train, y_train, X_test, y_test, seed))
            print(json.dumps(results[-1]), flush=True)

    base = results[0] if results[0]["model"] == "baseline" else None
    print("\n| model | seed | epochs | test accuracy | fit time | time to 99.0% | time to 99.5% |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        fit = f"{r['fit_time']:.2f} s"
        if base and r is not base:
            fit += f" ({r['fit_time'] / base['fit_time']:.2f}x)"
        print(
            f"| {r['model']} | {r['seed']} | {r['epochs']} | {100 * r['test_accuracy']:.2f}% | "
            f"{fit} | {seconds(r['time_to_99'])} | {seconds(r['time_to_99.5'])} |"
        )
    print_summary(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
