"""What oversubscribed CPUs cost, and what n_threads saves: fits running side by side.

Runs the same fit (CNNDigitClassifier on 10,000 MNIST training images, 2 epochs) alone, then
as many copies at once as the machine has CPUs, first with torch's default thread count
(each process takes every CPU) and then with ``n_threads=1``. Each process reports its fit
time; the table gives the slowest one of each run, and its ratio to the lone fit.

    python benchmarks/threads.py

Run it on an otherwise idle machine: other work changes the figures.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

FIT = r"""
import json, sys, time
from skdigits import CNNDigitClassifier
from skdigits.datasets import load_mnist
X, y = load_mnist("train", sys.argv[1])
n_threads = None if sys.argv[2] == "default" else int(sys.argv[2])
clf = CNNDigitClassifier(max_epochs=2, n_threads=n_threads, random_state=0)
start = time.perf_counter()
clf.fit(X[:10_000], y[:10_000])
print(json.dumps({"fit": time.perf_counter() - start}))
"""


def run(copies, threads, data_home):
    """Return the fit times of ``copies`` processes started together."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FIT, str(data_home), threads],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(copies)
    ]
    return [json.loads(p.communicate()[0].splitlines()[-1])["fit"] for p in processes]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    alone = run(1, "default", args.data_home)[0]
    print(f"{cpus} CPUs; one fit alone, default threads: {alone:.1f} s\n")
    print("| run | slowest fit | vs. alone |")
    print("| --- | --- | --- |")
    print(f"| 1 fit, default threads ({cpus}) | {alone:.1f} s | 1.00x |")
    for threads, label in (("default", f"default threads ({cpus} each)"), ("1", "n_threads=1")):
        slowest = max(run(cpus, threads, args.data_home))
        print(f"| {cpus} fits at once, {label} | {slowest:.1f} s | {slowest / alone:.2f}x |")


if __name__ == "__main__":
    main()
