"""Predicting on a dask.distributed cluster against predicting in one process.

Fits the default CNNDigitClassifier on 10,000 MNIST training images (2 epochs; the weights do
not matter for speed), then predicts the 10,000 test images repeated ``--repeat`` times:
in this process with ``predict``, and on a local cluster of worker processes (one task thread
each, TorchThreads registered) with ``skdigits.distributed.predict`` over blocks of
``--chunk`` images already held by the workers. Reports images per second and the ratio
(the labels gathered back to this process included); checks the labels agree.

    python benchmarks/dask_predict.py
    python benchmarks/dask_predict.py --workers 2 --repeat 10 --chunk 10000
"""

import argparse
import time
from pathlib import Path

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

from skdigits import CNNDigitClassifier
from skdigits.datasets import load_mnist
from skdigits.distributed import TorchThreads, predict

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=10_000)
    args = parser.parse_args()
    X_train, y_train = load_mnist("train", args.data_home)
    X_test, _ = load_mnist("test", args.data_home)
    clf = CNNDigitClassifier(max_epochs=2, random_state=0).fit(X_train[:10_000], y_train[:10_000])
    X = np.concatenate([X_test] * args.repeat)

    start = time.perf_counter()
    local = clf.predict(X)
    local_rate = len(X) / (time.perf_counter() - start)

    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, Client(cluster) as client:
        client.register_plugin(TorchThreads())
        # The blocks are placed on the workers first, as a dask array read from storage
        # there would be: the figure is prediction, not shipping images from this process.
        images = client.persist(da.from_array(X, chunks=(args.chunk, X.shape[1])))
        wait(images)
        start = time.perf_counter()
        on_cluster = predict(clf, images).compute()
        cluster_rate = len(X) / (time.perf_counter() - start)

    assert np.array_equal(local, on_cluster)
    print(f"{len(X):,} images; labels identical")
    print("| where | images/s | vs. one process |")
    print("| --- | --- | --- |")
    print(f"| one process, `clf.predict` | {local_rate:,.0f} | 1.00x |")
    print(
        f"| local cluster, {args.workers} workers x 1 thread, `distributed.predict` | "
        f"{cluster_rate:,.0f} | {cluster_rate / local_rate:.2f}x |"
    )


if __name__ == "__main__":
    main()
