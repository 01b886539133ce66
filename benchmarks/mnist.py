"""Benchmark on full MNIST: the Keras-tutorial CNN in plain skorch against CNNDigitClassifier.

For each model this trains on the 60,000 training images and reports test accuracy on the
10,000 test images, fit wall time, the training time at which 99.0% test accuracy was first
reached (test accuracy is measured after every epoch; the time spent measuring it is not
counted), predict throughput on the test images (median of 5 passes), and peak memory
(resident set size of the process, which runs each model in a fresh subprocess so the peaks
don't mix). Ratios are against the baseline measured in the same run. With several
``--seeds``, the baseline runs once (seed 0) and each preset once per seed, and a summary
gives each figure's mean and standard deviation over the seeds. On a shared machine the
baseline's time moves between runs far more than the presets' (77-200 s in one day's runs,
the defaults' 19-20 s), so ``--paired`` runs the baseline again before each seed's runs and
gives each run's ratios against the baseline run just before it; the summary then gives the
baseline's own spread over its runs.

    python benchmarks/mnist.py                      # baseline, default, accurate preset
    python benchmarks/mnist.py --seeds 0 1 2 3      # the two presets over four seeds
    python benchmarks/mnist.py --models baseline default --seeds 0 1 2 3 --paired
    python benchmarks/mnist.py --models default --scale 10000 30000 60000
    python benchmarks/mnist.py --data-home DIR --json results.json
    python benchmarks/mnist.py --models default --million   # predict_proba on 1M images

Not part of the unit tests: a full run takes several minutes on a 2-core CPU.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from skdigits import PRESETS, CNNDigitClassifier
from skdigits.datasets import load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MODELS = ("baseline", "default", "accurate")
# Predict throughput is the median of this many passes over the test images: one pass takes
# well under a second, short enough for a passing hiccup of the machine to skew it.
PREDICT_REPEATS = 5


class TutorialCNN(nn.Module):
    """The Keras MNIST tutorial's network: Conv32-Pool-Conv64-Pool-Dropout-Dense128-Dense10."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(64 * 5 * 5, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, X):
        return self.layers(X)


def tutorial_net(device="cpu", max_epochs=10, **kwargs):
    """Return the tutorial CNN in plain skorch, trained as the tutorial does (Adam, 1e-3, 128)."""
    return NeuralNetClassifier(
        TutorialCNN,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=128,
        max_epochs=max_epochs,
        iterator_train__shuffle=True,
        device=device,
        **kwargs,
    )


def as_tutorial(X):
    """Return images as the tutorial takes them: float32 0..1, shape (n, 1, 28, 28)."""
    return (X / np.float32(255)).reshape(-1, 1, 28, 28)


class TestAccuracyClock(Callback):
    """Record test accuracy and training time (without this measurement) after each epoch."""

    def __init__(self, X_test, y_test):
        self.X_test = X_test
        self.y_test = y_test

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.measuring_ = 0.0

    def on_epoch_end(self, net, **kwargs):
        begin = time.perf_counter()
        net.history.record("train_time", begin - self.start_ - self.measuring_)
        net.history.record("test_acc", float(np.mean(net.predict(self.X_test) == self.y_test)))
        self.measuring_ += time.perf_counter() - begin


def time_to(history, target):
    """Return the training time at which test accuracy first reached ``target``, or None."""
    reached = [row["train_time"] for row in history if row["test_acc"] >= target]
    return reached[0] if reached else None


def build(name, X_test, y_test, params, seed):
    """Return ``(estimator, X_test as the estimator takes it, clock)``."""
    clock = TestAccuracyClock(None, y_test)
    if name == "baseline":
        # The tutorial scales all images to float32 0..1 up front, as (n, 1, 28, 28).
        clock.X_test = as_tutorial(X_test)
        return tutorial_net(callbacks=[clock]), clock.X_test, clock
    clock.X_test = X_test
    preset = PRESETS["accurate"] if name == "accurate" else {}
    clf = CNNDigitClassifier(random_state=seed, callbacks=[clock], **{**preset, **params})
    return clf, X_test, clock


def run_one(name, data_home, n_train, params, seed):
    """Train and measure one model; return its figures as a dict."""
    torch.manual_seed(seed)
    X_train, y_train = load_mnist("train", data_home=data_home)
    X_test, y_test = load_mnist("test", data_home=data_home)
    X_train, y_train = X_train[:n_train], y_train[:n_train]
    estimator, X_test_in, clock = build(name, X_test, y_test, params, seed)
    X_train_in = as_tutorial(X_train) if name == "baseline" else X_train
    begin = time.perf_counter()
    estimator.fit(X_train_in, y_train)
    fit_time = time.perf_counter() - begin - clock.measuring_
    estimator.predict(X_test_in[:1000])  # warm-up
    predict_times = []
    for _ in range(PREDICT_REPEATS):
        begin = time.perf_counter()
        accuracy = float(np.mean(estimator.predict(X_test_in) == y_test))
        predict_times.append(time.perf_counter() - begin)
    predict_time = float(np.median(predict_times))
    history = estimator.history if name == "baseline" else estimator.history_
    return {
        "model": name,
        "seed": seed,
        "params": params,
        "n_train": len(X_train),
        "epochs": len(history),
        "test_accuracy": accuracy,
        "fit_time": fit_time,
        "time_to_99": time_to(history, 0.99),
        "predict_per_s": len(X_test) / predict_time,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "test_acc_per_epoch": [row["test_acc"] for row in history],
    }


def _rss_mb(field):
    """Return a field of /proc/self/status (VmRSS: now, VmHWM: peak) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_million(data_home):
    """Time ``predict_proba`` on a million images and measure the memory it takes."""
    X_test, y_test = load_mnist("test", data_home=data_home)
    # Prediction speed and memory don't depend on the weights: one short epoch will do.
    clf = CNNDigitClassifier(max_epochs=1, random_state=0).fit(X_test[:5000], y_test[:5000])
    X = np.resize(X_test, (1_000_000, X_test.shape[1]))  # uint8, 784 MB
    clf.predict_proba(X[:1000])  # warm-up
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the RSS now
    before = _rss_mb("VmRSS")
    begin = time.perf_counter()
    proba = clf.predict_proba(X)
    seconds = time.perf_counter() - begin
    return {
        "model": "default, predict_proba on 1,000,000 images",
        "seconds": seconds,
        "predict_per_s": len(X) / seconds,
        "input_mb": X.nbytes / 2**20,
        "output_mb": proba.nbytes / 2**20,
        "float32_copy_mb": X.size * 4 / 2**20,
        "peak_growth_mb": _rss_mb("VmHWM") - before,
    }


def run_in_subprocess(name, options, n_train, seed=0):
    command = [
        sys.executable,
        __file__,
        "--run-one",
        name,
        "--data-home",
        str(options.data_home),
        "--n-train",
        str(n_train),
        "--params",
        json.dumps(options.params),
        "--seed",
        str(seed),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def ratio(value, base):
    return f"{value / base:.2f}x" if value is not None and base else "n/a"


def baseline_of(r, results):
    """Return the baseline run that ``r``'s ratios are against: its pair, or the first one."""
    if "baseline_run" in r:
        return results[r["baseline_run"]]
    return next((b for b in results if b["model"] == "baseline"), None)


def print_table(results):
    print(
        "| model | seed | train images | epochs | test accuracy | fit time | time to 99.0% "
        "| predict | peak memory |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        base = None if r["model"] == "baseline" else baseline_of(r, results)
        t99 = f"{r['time_to_99']:.1f} s" if r["time_to_99"] is not None else "not reached"
        if base:
            t99 += f" ({ratio(r['time_to_99'], base['time_to_99'])})"
        fit = f"{r['fit_time']:.1f} s"
        predict = f"{r['predict_per_s']:,.0f} images/s"
        if base:
            fit += f" ({ratio(r['fit_time'], base['fit_time'])})"
            predict += f" ({ratio(r['predict_per_s'], base['predict_per_s'])})"
        print(
            f"| {r['model']} | {r['seed']} | {r['n_train']:,} | {r['epochs']} | "
            f"{100 * r['test_accuracy']:.2f}% | {fit} | {t99} | {predict} | "
            f"{r['peak_rss_mb']:,.0f} MB |"
        )


def spread(runs, key, bases=None, scale=1.0, fmt=".2f", unit=""):
    """Return "mean +- std" of a figure over ``runs``, with its ratios to ``bases`` if given.

    ``bases`` holds the baseline run of each run (the same one for all, or each its own).
    """
    values = [r[key] for r in runs]
    if any(v is None for v in values):
        return "not reached on every seed"
    values = np.array(values, dtype=float)
    text = f"{(values * scale).mean():{fmt}} +- {(values * scale).std():{fmt}}{unit}"
    if bases and all(base is not None and base[key] for base in bases):
        ratios = values / np.array([base[key] for base in bases], dtype=float)
        text += f" ({ratios.mean():.3f}x, {ratios.min():.3f}-{ratios.max():.3f}x)"
    return text


def print_summary(results):
    """Print each preset's mean and standard deviation over the seeds (full training set).

    With several baseline runs (``--paired``), the baseline gets a row of its own, and each
    preset's ratios are the mean and range of its runs' ratios to their own baseline run.
    """
    print("\n| model | seeds | test accuracy | fit time | time to 99.0% | predict | peak memory |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    baselines = [r for r in results if r["model"] == "baseline"]
    names = ("baseline", "default", "accurate") if len(baselines) > 1 else ("default", "accurate")
    for name in names:
        runs = [r for r in results if r["model"] == name and r["n_train"] == results[0]["n_train"]]
        if not runs:
            continue
        bases = None if name == "baseline" else [baseline_of(r, results) for r in runs]
        accuracies = ", ".join(f"{100 * r['test_accuracy']:.2f}%" for r in runs)
        seeds = ", ".join(str(r["seed"]) for r in runs)
        if name == "baseline":
            seeds = f"{runs[0]['seed']} ({len(runs)} runs)"
        print(
            f"| {name} | {seeds} | "
            f"{spread(runs, 'test_accuracy', scale=100, unit='%')} ({accuracies}) | "
            f"{spread(runs, 'fit_time', bases, fmt='.1f', unit=' s')} | "
            f"{spread(runs, 'time_to_99', bases, fmt='.1f', unit=' s')} | "
            f"{spread(runs, 'predict_per_s', bases, fmt=',.0f', unit=' images/s')} | "
            f"{spread(runs, 'peak_rss_mb', fmt=',.0f', unit=' MB')} |"
        )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-home", type=Path, default=DATA_HOME)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--scale",
        nargs="+",
        type=int,
        metavar="N",
        help="also time the default model's fit on the first N images",
    )
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help="JSON of CNNDigitClassifier parameters to override",
    )
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="random_state of each preset's runs (the baseline runs once, with seed 0)",
    )
    parser.add_argument(
        "--paired",
        action="store_true",
        help="run the baseline (seed 0) again before each seed's runs and give each run's "
        "ratios against the baseline run just before it",
    )
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--million",
        action="store_true",
        help="also time predict_proba on a million images and measure its memory",
    )
    parser.add_argument("--run-one", choices=(*MODELS, "million"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.run_one == "million":
        print(json.dumps(run_million(options.data_home)))
        return
    if options.run_one:
        print(
            json.dumps(
                run_one(
                    options.run_one,
                    options.data_home,
                    options.n_train,
                    options.params,
                    options.seed,
                )
            )
        )
        return
    machine = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    # The instruction sets torch's kernels use (AVX2, AVX512...) move every ratio: on 2 cores
    # without AVX-512 the defaults' fit took 0.24x the baseline's, with it 0.16x (BENCHMARKS.md).
    capability = torch.backends.cpu.get_cpu_capability()
    print(
        f"torch {torch.__version__}, {threads} threads, {machine} ({capability}), "
        f"{os.cpu_count()} CPUs"
    )
    results = []
    if options.paired and "baseline" in options.models:
        presets = [name for name in options.models if name != "baseline"]
        for seed in options.seeds:
            results.append(run_in_subprocess("baseline", options, options.n_train))
            print(json.dumps(results[-1]), flush=True)
            baseline_run = len(results) - 1
            for name in presets:
                result = run_in_subprocess(name, options, options.n_train, seed)
                results.append({**result, "baseline_run": baseline_run})
                print(json.dumps(results[-1]), flush=True)
    else:
        for name in options.models:
            for seed in [0] if name == "baseline" else options.seeds:
                results.append(run_in_subprocess(name, options, options.n_train, seed))
                print(json.dumps(results[-1]), flush=True)
    for n in options.scale or []:
        results.append(run_in_subprocess("default", options, n))
    print_table(results)
    if len(options.seeds) > 1:
        print_summary(results)
    if options.million:
        results.append(run_in_subprocess("million", options, options.n_train))
        r = results[-1]
        print(
            f"\npredict_proba on 1,000,000 images: {r['seconds']:.1f} s "
            f"({r['predict_per_s']:,.0f} images/s); memory grew by {r['peak_growth_mb']:,.0f} MB "
            f"at its peak, for an output of {r['output_mb']:,.0f} MB (input: "
            f"{r['input_mb']:,.0f} MB of uint8; as float32 it would be "
            f"{r['float32_copy_mb']:,.0f} MB)"
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
