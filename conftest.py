"""pytest's setup for the whole repository: the doctests' collection and pytest-xdist's workers."""

import importlib.util
import os

# A module that needs an extra (skdigits.onnx the onnx extra, skdigits.distributed the dask
# extra) would fail the collection of its doctests where that extra is missing, not skip.
EXTRA_MODULES = {
    "skdigits/onnx.py": ("skl2onnx", "onnx", "onnxruntime"),
    "skdigits/distributed.py": ("dask", "distributed"),
}
collect_ignore = [
    path
    for path, packages in EXTRA_MODULES.items()
    if not all(importlib.util.find_spec(package) for package in packages)
]


# The longest tests, which start the examples or the docs build in another process: pytest-xdist
# runs them first, while the other worker takes the short tests, so that the run does not end
# waiting for one of them (examples/plot_fine_tune.py alone takes two minutes on 2 cores).
LONG_TEST_FILES = ("test_examples.py", "test_docs.py")


def pytest_configure(config):
    """Give each pytest-xdist worker its share of the cores, for torch and its subprocesses.

    torch runs its parallel work on every core by default. Run by ``pytest -n auto``, the
    workers would each take every core, and torch's OpenMP threads spin while they wait for
    one another: two such processes on 2 cores run far slower than one. Each worker (and each
    process it starts, an example or a CLI run) gets ``cores // workers`` threads.
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        return
    import joblib
    import torch

    threads = max(1, joblib.cpu_count() // int(workers))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, put the tests of ``LONG_TEST_FILES`` first."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        items.sort(key=lambda item: item.path.name not in LONG_TEST_FILES)
