"""Run skdigits' training on a ``dask.distributed`` cluster without oversubscribing its CPUs.

scikit-learn's searches run their fits through joblib, and joblib's Dask backend sends them to
the workers of a ``dask.distributed`` cluster::

    import joblib
    from dask.distributed import Client
    from sklearn.model_selection import GridSearchCV
    from skdigits import CNNDigitClassifier
    from skdigits.distributed import TorchThreads

    client = Client("tcp://scheduler:8786")
    client.register_plugin(TorchThreads())
    search = GridSearchCV(CNNDigitClassifier(random_state=0), {"lr": [2e-3, 5e-3]}, n_jobs=-1)
    with joblib.parallel_backend("dask"):
        search.fit(X, y)

Each fit runs in one of a worker's task threads and PyTorch runs every convolution on several
threads of its own, so without care a host runs (tasks x torch threads) busy threads on its
cores. :class:`TorchThreads` sets each worker's torch thread count to the worker host's CPUs
divided by the task threads of all the workers on that host.

To predict a collection of images too large for one machine, :func:`predict` and
:func:`predict_proba` map a fitted model over the blocks of a dask array, on the same
cluster::

    import dask.array as da
    from skdigits.distributed import predict

    images = da.from_zarr("scans.zarr")  # (n, 28, 28), chunked along the images
    labels = predict(model, images).compute()

Needs the ``dask`` extra: ``pip install "skdigits[dask]"``.
"""

import dask
import dask.array as da
import dask.system
import numpy as np
import torch
from distributed import WorkerPlugin
from distributed.comm.addressing import get_address_host

__all__ = ["TorchThreads", "predict", "predict_proba", "torch_threads_for"]


def predict(model, X):
    """Return a dask array of the labels ``model`` predicts for the images of ``X``.

    The fitted model goes into the task graph once, as one piece of data, so each worker
    receives it once however many blocks it predicts; each block of images is predicted by
    ``model.predict`` on the worker that holds it. Register :class:`TorchThreads` so the
    blocks a host predicts at once share its CPUs. Nothing runs until ``.compute()``.

    Parameters
    ----------
    model : fitted estimator
        A :class:`~skdigits.CNNDigitClassifier`, or a pipeline ending in one, that predicts
        arrays of images.
    X : dask.array.Array or array-like
        Images, ``(n, height * width)``, ``(n, height, width)`` or ``(n, 1, height, width)``,
        chunked along the first axis only (other axes are merged into one chunk).

    Returns
    -------
    labels : dask.array.Array of shape (n,)
        Predicted labels, of the dtype of the model's ``classes_``.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_digits
    >>> from skdigits import CNNDigitClassifier
    >>> from skdigits.distributed import predict
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0)
    >>> clf = clf.fit(X[:300], y[:300])
    >>> labels = predict(clf, da.from_array(X, chunks=500))
    >>> labels.chunks
    ((500, 500, 500, 297),)
    >>> bool((labels.compute() == clf.predict(X)).all())
    True
    """
    X = _image_blocks(X)
    classes = _classes(model)
    return X.map_blocks(
        _predict_block,
        dask.delayed(model),
        dtype=classes.dtype,
        drop_axis=list(range(1, X.ndim)),
        meta=np.empty((0,), dtype=classes.dtype),
    )


def predict_proba(model, X):
    """Return a dask array of the class probabilities ``model`` gives the images of ``X``.

    As :func:`predict`, with ``model.predict_proba`` on each block.

    Parameters
    ----------
    model : fitted estimator
        A :class:`~skdigits.CNNDigitClassifier`, or a pipeline ending in one.
    X : dask.array.Array or array-like
        Images, chunked along the first axis only.

    Returns
    -------
    proba : dask.array.Array of shape (n, n_classes)
        Class probabilities, columns ordered as the model's ``classes_``.
    """
    X = _image_blocks(X)
    n_classes = len(_classes(model))
    return X.map_blocks(
        _predict_proba_block,
        dask.delayed(model),
        dtype=np.float64,
        chunks=(X.chunks[0], (n_classes,)),
        drop_axis=list(range(2, X.ndim)),
        meta=np.empty((0, 0), dtype=np.float64),
    )


def _image_blocks(X):
    """Return ``X`` as a dask array chunked along the images only."""
    X = X if isinstance(X, da.Array) else da.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"expected images or rows of pixels; got an array of shape {X.shape}")
    return X.rechunk({axis: -1 for axis in range(1, X.ndim)})


def _classes(model):
    """Return the class labels of a fitted classifier or of a pipeline's last step."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ValueError(f"{type(model).__name__} is not a fitted classifier; fit it first")
    return np.asarray(classes)


def _predict_block(block, model):
    return model.predict(block)


def _predict_proba_block(block, model):
    return model.predict_proba(block)


def torch_threads_for(worker_address, workers, cpus):
    """Return the torch threads a worker's tasks may each use so its host is not oversubscribed.

    Parameters
    ----------
    worker_address : str
        Address of the worker, as the scheduler knows it.
    workers : dict
        The scheduler's workers, ``{address: {"nthreads": int, ...}}``, as in
        ``Client.scheduler_info()["workers"]``.
    cpus : int
        CPUs the worker's process may use.

    Returns
    -------
    threads : int
        ``cpus`` divided by the task threads of all workers on the worker's host, at least 1.

    Examples
    --------
    >>> from skdigits.distributed import torch_threads_for
    >>> workers = {
    ...     "tcp://10.0.0.1:4001": {"nthreads": 1},
    ...     "tcp://10.0.0.1:4002": {"nthreads": 1},
    ...     "tcp://10.0.0.2:4001": {"nthreads": 2},
    ... }
    >>> torch_threads_for("tcp://10.0.0.1:4001", workers, cpus=8)
    4
    >>> torch_threads_for("tcp://10.0.0.2:4001", workers, cpus=8)
    4
    """
    host = get_address_host(worker_address)
    task_threads = sum(
        info["nthreads"] for address, info in workers.items() if get_address_host(address) == host
    )
    return max(1, cpus // max(1, task_threads))


class TorchThreads(WorkerPlugin):
    """A Dask worker plugin that shares each host's CPUs among the torch work of its tasks.

    On every worker it registers with, it sets :func:`torch.set_num_threads` to the CPUs the
    worker may use (``dask.system.CPU_COUNT``, which honours CPU affinity and container
    limits) divided by the task threads of all the workers on the same host, or to
    ``threads`` when given. A host with 8 CPUs running 2 workers of 1 task thread each gives
    every fit 4 torch threads; 2 workers of 2 task threads give 2.

    The count is worked out when the plugin is set up on a worker. Register it once the
    cluster has its workers, and again after scaling it (registering under the same name
    replaces the plugin on every worker).

    Parameters
    ----------
    threads : int or None, default=None
        Torch threads per worker; None works them out as above.

    Examples
    --------
    >>> import torch
    >>> from dask.distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from skdigits.distributed import TorchThreads  # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> client.register_plugin(TorchThreads())  # doctest: +SKIP
    >>> client.run(torch.get_num_threads)  # doctest: +SKIP
    {'tcp://127.0.0.1:40857': 1, 'tcp://127.0.0.1:41029': 1}
    """

    name = "skdigits-torch-threads"

    def __init__(self, threads=None):
        self.threads = threads

    async def setup(self, worker):
        threads = self.threads
        if threads is None:
            identity = await worker.scheduler.identity()
            workers = dict(identity["workers"])
            # A worker being set up may not be in the scheduler's list yet.
            workers.setdefault(worker.address, {"nthreads": worker.state.nthreads})
            threads = torch_threads_for(worker.address, workers, dask.system.CPU_COUNT)
        torch.set_num_threads(threads)
