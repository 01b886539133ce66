"""Hyperparameter search on a dask.distributed cluster of two local worker processes."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skdigits import CNNDigitClassifier

distributed = pytest.importorskip("distributed")
import dask.array as da  # noqa: E402
import dask.system  # noqa: E402  (dask comes with distributed)
from numpy.testing import assert_array_equal  # noqa: E402

from skdigits.distributed import (  # noqa: E402
    TorchThreads,
    predict,
    predict_proba,
    torch_threads_for,
)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_torch_threads_share_each_host_among_its_task_threads():
    workers = {
        "tcp://10.0.0.1:1": {"nthreads": 2},
        "tcp://10.0.0.1:2": {"nthreads": 1},
        "tcp://10.0.0.2:1": {"nthreads": 1},
    }
    assert torch_threads_for("tcp://10.0.0.1:1", workers, cpus=12) == 4
    assert torch_threads_for("tcp://10.0.0.2:1", workers, cpus=12) == 12
    # Never fewer than one thread, even with more task threads than CPUs.
    assert torch_threads_for("tcp://10.0.0.1:2", workers, cpus=2) == 1


def test_plugin_sets_torch_threads_on_every_worker(client):
    client.register_plugin(TorchThreads(threads=3))
    assert set(client.run(torch.get_num_threads).values()) == {3}
    # Tasks run in the workers' task threads, which must see the same count.
    assert client.submit(torch.get_num_threads, pure=False).result() == 3
    client.register_plugin(TorchThreads())
    cpus = min(client.run(lambda: dask.system.CPU_COUNT).values())
    # Two workers of one task thread each on this host: half the CPUs each, at least one.
    expected = max(1, cpus // 2)
    assert set(client.run(torch.get_num_threads).values()) == {expected}
    assert client.submit(torch.get_num_threads, pure=False).result() == expected


def test_grid_search_on_dask_matches_local_run(client, digits):
    X, y = digits
    X, y = X[:600], y[:600]
    client.register_plugin(TorchThreads())
    estimator = CNNDigitClassifier(
        channels=(8, 16), hidden_units=32, max_epochs=4, device="cpu", random_state=0
    )
    grid = {"lr": [1e-4, 1e-2], "hidden_units": [8, 32]}

    local = GridSearchCV(estimator, grid, cv=2, n_jobs=1).fit(X, y)
    on_dask = GridSearchCV(estimator, grid, cv=2, n_jobs=-1)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        on_dask.fit(X, y)

    # The fits ran as tasks on the workers.
    assert {task["worker"] for task in tasks.data} == set(client.scheduler_info()["workers"])
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_allclose(
        on_dask.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], atol=0.02
    )


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return CNNDigitClassifier(channels=(8, 16), max_epochs=3, device="cpu", random_state=0).fit(
        X[:600], y[:600]
    )


def test_predictions_on_the_cluster_equal_local_ones(client, fitted, digits):
    X, _ = digits
    client.register_plugin(TorchThreads())
    images = da.from_array(X.reshape(-1, 8, 8), chunks=(400, 4, 8))
    with distributed.get_task_stream(client) as tasks:
        labels = predict(fitted, images).compute()
        proba = predict_proba(fitted, images).compute()

    # The blocks ran as tasks on both workers.
    assert {task["worker"] for task in tasks.data} == set(client.scheduler_info()["workers"])
    assert_array_equal(labels, fitted.predict(X))
    # Other torch thread counts may change the last digits of a sum.
    np.testing.assert_allclose(proba, fitted.predict_proba(X), rtol=0, atol=1e-6)


def test_the_model_enters_the_task_graph_once(fitted, digits):
    X, _ = digits
    graph = dict(predict(fitted, da.from_array(X, chunks=100)).__dask_graph__())
    # One key holds the model; every block's task refers to that key.
    holders = [key for key, value in graph.items() if _holds_model(value, fitted)]
    assert len(holders) == 1
    assert len(graph) > len(X) // 100


def _holds_model(value, model):
    return value is model or getattr(value, "value", None) is model


def test_prediction_of_a_flat_array_is_an_error_naming_its_shape(fitted):
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        predict(fitted, np.zeros(10))
