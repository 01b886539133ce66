"""A fit in a forked child process after a fit in its parent finishes and learns.

Torch's OpenMP thread pool does not survive fork(): without skdigits' guard (see
``skdigits/_threads.py``) the child's first parallel operation waits forever for threads that
exist only in the parent. Each scenario runs in a fresh interpreter in its own process group,
so a hang fails the test at the timeout, and kills the forked processes with it, rather than
hanging pytest.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Once a process has run a backward pass on a machine with a CUDA GPU, torch's autograd
    # refuses to run in a child forked from it, whatever the device (docs/tuning.rst).
    pytest.mark.skipif(
        torch.cuda.is_available(), reason="torch's autograd cannot run after fork with CUDA"
    ),
]

# Generous against a loaded machine: each scenario takes a few seconds, most of it importing.
TIMEOUT = 90

# Fits a small classifier in the parent before the scenario forks.
PARENT_FIT = """
from sklearn.datasets import load_digits
from skdigits import CNNDigitClassifier

X, y = load_digits(return_X_y=True)
X, y = X[:300], y[:300]
clf = CNNDigitClassifier(channels=(8, 16), max_epochs=2, device="cpu", random_state=0)
clf.fit(X, y)
"""


def run_python(code):
    """Run ``code`` after PARENT_FIT in a new interpreter; return its stdout, or fail the test."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PARENT_FIT) + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the interpreter and every process it forked
        process.communicate()
        pytest.fail(f"hung: no result after {TIMEOUT} s")
    assert process.returncode == 0, stderr
    return stdout


def test_fit_in_os_fork_child_after_parent_fit_finishes_and_learns():
    stdout = run_python(
        """
        import os

        pid = os.fork()
        if pid == 0:
            child = CNNDigitClassifier(
                channels=(8, 16), max_epochs=2, device="cpu", random_state=0
            ).fit(X, y)
            print(child.score(X, y), flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        """
    )
    assert float(stdout) > 0.5  # chance is 0.1 on ten digits


def test_grid_search_with_multiprocessing_backend_after_parent_fit_finishes_and_learns():
    stdout = run_python(
        """
        import multiprocessing

        import joblib
        from sklearn.model_selection import GridSearchCV

        # joblib's "multiprocessing" backend forks its workers where fork is the start method.
        multiprocessing.set_start_method("fork", force=True)
        search = GridSearchCV(clf, {"lr": [5e-3, 1e-2]}, cv=2, n_jobs=2, refit=False)
        with joblib.parallel_backend("multiprocessing"):
            search.fit(X, y)
        print(search.cv_results_["mean_test_score"].min())
        """
    )
    assert float(stdout) > 0.3  # chance is 0.1 on ten digits
