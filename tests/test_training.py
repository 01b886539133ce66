"""The batch iterator: batches gathered on the host, or on a GPU from one copy of the data."""

import json
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from conftest import tiny
from numpy.testing import assert_array_equal
from skorch.dataset import Dataset

from skdigits._training import AdamW, BatchIterator

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _batches(iterator, seed=0):
    torch.manual_seed(seed)
    return [
        ({k: v.cpu() for k, v in X.items()} if isinstance(X, dict) else X.cpu(), y.cpu())
        for X, y in iterator
    ]


def _data(n=101):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n, 1, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    return X, y


@pytest.mark.parametrize("n", [101, 1, 0])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_batches_gathered_on_the_device_are_those_gathered_on_the_host(shuffle, weighted, n):
    X, y = _data(n)
    if weighted:
        X = {"X": X, "sample_weight": np.linspace(0.5, 1.5, len(y), dtype=np.float32)}
    iterator = BatchIterator(Dataset(X, y), batch_size=20, shuffle=shuffle)
    on_host = _batches(iterator)
    # The same gathering from tensors, as it runs on a GPU (here on the CPU).
    tensors = {k: torch.from_numpy(v) for k, v in X.items()} if weighted else torch.from_numpy(X)
    torch.manual_seed(0)
    on_device = list(iterator._iter_on_device(tensors, torch.from_numpy(y)))
    assert len(on_device) == len(on_host) == len(iterator)
    for (Xh, yh), (Xd, yd) in zip(on_host, on_device, strict=True):
        assert_array_equal(yd, yh)
        if weighted:
            assert Xd.keys() == Xh.keys()
            for name in Xh:
                assert_array_equal(Xd[name], Xh[name])
        else:
            assert_array_equal(Xd, Xh)


def test_on_the_cpu_batches_come_from_the_host_arrays():
    X, y = _data()
    iterator = BatchIterator(Dataset(X, y), batch_size=32, device="cpu")
    assert iterator._on_device() is None
    (Xb, yb), *_ = iterator
    assert_array_equal(Xb, X[:32])
    assert_array_equal(yb, y[:32])


@needs_cuda
def test_on_a_gpu_the_data_is_copied_once_and_batches_stay_there():
    X, y = _data()
    dataset = Dataset(X, y)
    first = BatchIterator(dataset, batch_size=32, shuffle=True, device="cuda")
    batches = list(first)
    assert all(Xb.is_cuda and yb.is_cuda for Xb, yb in batches)
    # A second pass (the next epoch's iterator) reuses the copy made by the first.
    second = BatchIterator(dataset, batch_size=32, shuffle=True, device="cuda")
    assert second._on_device()[0] is first._on_device()[0]
    gathered = torch.cat([Xb for Xb, _ in batches]).cpu().numpy()
    assert_array_equal(np.sort(gathered, axis=0), np.sort(X, axis=0))


@needs_cuda
def test_on_a_gpu_data_too_large_for_its_free_memory_is_copied_per_batch(monkeypatch):
    monkeypatch.setattr("skdigits._training.MAX_DEVICE_FRACTION", 0.0)
    X, y = _data()
    iterator = BatchIterator(Dataset(X, y), batch_size=32, device="cuda")
    assert iterator._on_device() is None
    assert not next(iter(iterator))[0].is_cuda


@needs_cuda
def test_fit_on_a_gpu_learns_like_on_the_cpu(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    scores = [
        tiny(device=device, max_epochs=5).fit(X_train, y_train).score(X_test, y_test)
        for device in ("cpu", "cuda")
    ]
    assert scores[1] > 0.8
    assert abs(scores[1] - scores[0]) < 0.05


@needs_cuda
def test_on_a_gpu_a_read_only_memmap_is_copied_without_a_host_copy_or_warning(tmp_path):
    X, y = _data(20_000)
    writable = np.memmap(tmp_path / "images.u8", np.uint8, "w+", shape=X.shape)
    writable[:] = X
    writable.flush()
    del writable
    X_memmap = np.memmap(tmp_path / "images.u8", np.uint8, "r", shape=X.shape)
    iterator = BatchIterator(Dataset(X_memmap, y), batch_size=100, device="cuda")
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            on_device, _ = iterator._on_device()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # numpy's allocations are traced: a writable copy of the images would show here.
    assert peak < X.nbytes / 2
    assert_array_equal(on_device.cpu().numpy(), X)


# torch's check before each optimizer step, as recent torch names it and as older torch did.
GRAPH_CAPTURE_CHECKS = [
    "_accelerator_graph_capture_health_check",
    "_cuda_graph_capture_health_check",
]


@pytest.mark.parametrize("check", GRAPH_CAPTURE_CHECKS)
def test_adamw_asks_the_gpu_about_graph_capture_only_for_parameters_off_the_cpu(
    monkeypatch, check
):
    # torch's check asks CUDA (initialising it) on any machine with a GPU; here it records.
    asked = []
    monkeypatch.setattr(torch.optim.AdamW, check, lambda self: asked.append(self), raising=False)
    on_cpu = AdamW([torch.nn.Parameter(torch.zeros(2))])
    getattr(on_cpu, check)()
    assert asked == []
    off_cpu = AdamW([torch.nn.Parameter(torch.zeros(2, device="meta"))])
    getattr(off_cpu, check)()
    assert asked == [off_cpu]


def test_a_cpu_fit_steps_without_torch_s_graph_capture_check(monkeypatch, digits_split):
    X_train, _, y_train, _ = digits_split

    def fail(self):
        raise AssertionError("asked CUDA about graph capture")

    for check in GRAPH_CAPTURE_CHECKS:
        monkeypatch.setattr(torch.optim.AdamW, check, fail, raising=False)
    clf = tiny(device="cpu", max_epochs=1).fit(X_train[:200], y_train[:200])
    assert isinstance(clf.net_.optimizer_, AdamW)


FUSED_ON_CPU = torch.__version__ >= "2.4"  # torch fuses AdamW on the CPU since 2.4


@pytest.mark.parametrize("as_groups", [False, True])
def test_adamw_is_fused_where_torch_has_the_kernel(as_groups):
    def params(device="cpu"):
        tensors = iter([torch.nn.Parameter(torch.zeros(2, device=device))])
        return [{"params": tensors, "lr": 0.5}] if as_groups else tensors

    assert AdamW(params()).defaults["fused"] is (True if FUSED_ON_CPU else None)
    assert len(AdamW(params()).param_groups[0]["params"]) == 1  # an iterator read twice
    assert AdamW(params(), fused=False).defaults["fused"] is False
    assert AdamW(params(), foreach=True).defaults["fused"] is None  # torch refuses both
    assert AdamW(params("meta")).defaults["fused"] is None  # no kernel: torch's default


@pytest.mark.skipif(not FUSED_ON_CPU, reason="torch fuses AdamW on the CPU from 2.4")
def test_fused_adamw_steps_as_torch_s_loop_of_operations():
    torch.manual_seed(0)
    weights = [torch.randn(5, 3), torch.randn(3)]
    grads = [[torch.randn_like(w) for w in weights] for _ in range(4)]
    trained, fused = [], []
    for optimizer in (AdamW, torch.optim.AdamW):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        opt = optimizer(params, lr=0.1, weight_decay=0.01)
        fused.append(opt.defaults["fused"])
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g
            opt.step()
        trained.append(params)
    assert fused == [True, None]
    for by_fused, by_loop, start in zip(*trained, weights, strict=True):
        torch.testing.assert_close(by_fused, by_loop, rtol=1e-5, atol=1e-6)
        assert not torch.equal(by_fused, start)


# Run in a fresh process, where torch's compiler is not imported yet: torch's optimizers
# import it on first use, about 0.8 s (BENCHMARKS.md), and skdigits' AdamW does not.
FRESH_PROCESS = """if True:
    import json, sys
    import torch
    from sklearn.datasets import load_digits
    from skdigits import CNNDigitClassifier
    from skdigits._training import AdamW

    outcome = {}
    X, y = load_digits(return_X_y=True)
    clf = CNNDigitClassifier(channels=(4, 8), max_epochs=2, random_state=0).fit(X, y)
    outcome["score"] = clf.score(X, y)
    outcome["imported_by_fit"] = "torch._dynamo" in sys.modules

    torch.manual_seed(0)
    weights = [torch.randn(5, 3), torch.randn(3)]
    grads = [[torch.randn_like(w) for w in weights] for _ in range(4)]
    fused = AdamW(weights).defaults["fused"]  # torch's own default is not fused on the CPU

    class TorchAdamW(torch.optim.AdamW):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, fused=fused, **kwargs)

    def train(optimizer_class):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        opt = optimizer_class(params[:1], lr=0.1, weight_decay=0.01)
        opt.add_param_group({"params": params[1:], "lr": 0.05})
        log = []
        for step_grads in grads:
            opt.zero_grad()
            log.append(all(p.grad is None for p in params))

            def closure(step_grads=step_grads):
                log.append(torch.is_grad_enabled())  # as in torch: passes record
                for p, g in zip(params, step_grads):
                    p.grad = g.clone()
                return torch.tensor(float(len(log)))

            with torch.no_grad():
                log.append(float(opt.step(closure)))
                log.append(torch.is_grad_enabled())  # the caller's mode comes back
        return params, log

    params, outcome["log"] = train(AdamW)
    outcome["imported_by_adamw"] = "torch._dynamo" in sys.modules
    expected, outcome["torch_log"] = train(TorchAdamW)
    outcome["imported_by_torch"] = "torch._dynamo" in sys.modules
    outcome["equal"] = [torch.equal(a, b) for a, b in zip(params, expected)]
    outcome["moved"] = [not torch.equal(a, w) for a, w in zip(params, weights)]
    print(json.dumps(outcome))
"""


def test_adamw_does_not_import_torch_s_compiler_and_steps_as_torch_s_adamw():
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["score"] > 0.5  # the fit trained
    assert outcome["imported_by_fit"] is False
    assert outcome["imported_by_adamw"] is False
    assert outcome["imported_by_torch"] is True  # what the fit and AdamW were spared
    assert outcome["log"] == outcome["torch_log"]
    assert outcome["log"][:4] == [True, True, 2.0, False]
    assert outcome["equal"] == outcome["moved"] == [True, True]
