"""Keep torch usable in a process forked after torch has run in parallel.

PyTorch's CPU builds run their parallel work (ATen's ``parallel_for`` and oneDNN's
convolutions) on GNU OpenMP (libgomp), and libgomp does not survive ``fork()``: once a parallel
region has run, libgomp keeps a team of worker threads, and a forked child inherits the team's
bookkeeping but none of its threads. The child's next parallel region with more than one
thread waits at the team's barrier for threads that do not exist, forever. So a fit in a child
forked after a fit in the parent (``os.fork``, or joblib's "multiprocessing" backend, which
forks its workers) hangs, as a gdb backtrace shows::

    #0 gomp_team_barrier_wait_end () from torch/lib/libgomp.so.1
    #1 gomp_team_end () from torch/lib/libgomp.so.1
    #2 dnnl::impl::cpu::x64::brgemm_convolution_fwd_t<...>::execute(...)

joblib's default "loky" backend starts fresh interpreters and is unaffected. A region of one
thread never touches libgomp's thread team, so a forked child runs torch on one thread.
"""

import contextlib
import os

import torch


def _one_torch_thread():
    """Run torch on one thread in a forked child; see the module docstring for why.

    One thread is also what a forked worker should use anyway: joblib's multiprocessing
    workers would otherwise each take all the cores, so ``n_jobs`` workers would run
    ``n_jobs`` times as many busy threads as there are cores. Only the child is changed; the
    parent keeps its thread settings.
    """
    torch.set_num_threads(1)


# Registered once, when skdigits is first imported (modules are imported once per process).
# Windows has no fork, and no os.register_at_fork.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_torch_thread)


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch threads (None: as they are), then restore them.

    torch's thread count is global to the process: fit and predict set it for their own
    work only, and give the caller back the setting it had.
    """
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
