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

Needs the ``dask`` extra: ``pip install "skdigits[dask]"``.
"""

import dask.system
import torch
from distributed import WorkerPlugin
from distributed.comm.addressing import get_address_host

__all__ = ["TorchThreads", "torch_threads_for"]


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
