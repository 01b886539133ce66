"""Training plumbing the classifier hands to skorch."""

import sys
import warnings
import weakref

import numpy as np
import torch
from skorch import NeuralNetClassifier

#: A dataset is copied whole to a GPU when it takes at most this fraction of the memory free
#: there; a larger one is copied one batch at a time.
MAX_DEVICE_FRACTION = 0.25

# The GPU copies of datasets, kept while skorch holds the dataset: each epoch then indexes
# memory on the GPU instead of copying every batch from the host. The training data's copy
# goes with the end of fit, the images to predict with the end of predict; the validation
# images (a tenth of the data by default) stay while the fitted net keeps its split.
_ON_DEVICE = weakref.WeakKeyDictionary()


def _map_arrays(X, function):
    """Apply ``function`` to ``X``, or to each of its arrays when it is a dict of them.

    A dict holds the images and their loss weights (see DigitNet).
    """
    return (
        {name: function(array) for name, array in X.items()}
        if isinstance(X, dict)
        else function(X)
    )


class BatchIterator:
    """Yield ``(X, y)`` batches by indexing whole arrays, one copy per batch.

    A drop-in for skorch's ``iterator_train`` / ``iterator_valid`` (a torch DataLoader by
    default), which fetches and collates samples one at a time: for 60,000 small images that
    Python loop costs more than the network. Batches keep the dtype of the data, so uint8
    images are converted to float32 inside the network, one batch at a time.

    On a CUDA device the whole dataset is copied to the GPU once (when it takes at most
    ``MAX_DEVICE_FRACTION`` of the free GPU memory) and each batch is gathered there: no
    copy from the host per batch.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        Holds the arrays ``X`` and ``y`` (``y`` may be None).
    batch_size : int
        Number of samples per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Visit the samples in a new random order each pass, drawn from torch's random state.
    device : str or torch.device, default="cpu"
        The device the network runs on; "cuda" keeps the data on the GPU (see above).
    """

    def __init__(self, dataset, batch_size, shuffle=False, device="cpu"):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device

    def __len__(self):
        return len(self._starts())

    def _starts(self):
        """Return where each batch starts.

        While training, a last batch of one image joins the batch before it: batch norm
        cannot normalise a single value per channel (1x1 feature maps of one image).
        """
        starts = list(range(0, len(self.dataset), self.batch_size))
        if self.shuffle and len(starts) > 1 and len(self.dataset) - starts[-1] == 1:
            del starts[-1]
        return starts

    def _on_device(self):
        """Return the dataset's ``(X, y)`` as tensors on the GPU, or None to copy per batch."""
        device = torch.device(self.device)
        if device.type != "cuda":
            return None
        if self.dataset in _ON_DEVICE:
            return _ON_DEVICE[self.dataset]
        X, y = self.dataset.X, self.dataset.y
        arrays = list(X.values()) if isinstance(X, dict) else [X]
        nbytes = sum(a.nbytes for a in arrays) + (0 if y is None else y.nbytes)
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes > MAX_DEVICE_FRACTION * free:
            return None

        def to_device(array):
            return torch.as_tensor(array, device=device)

        with warnings.catch_warnings():
            # torch warns that it cannot write to read-only arrays (memmaps, a DataFrame's
            # values) even when it only copies them to the GPU. A writable copy on the host
            # first would hold the whole array in memory: a memmap must not cost that.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            on_device = (_map_arrays(X, to_device), None if y is None else to_device(y))
        _ON_DEVICE[self.dataset] = on_device
        return on_device

    def _batch_rows(self):
        """Return the rows of each batch of one pass, in a new random order if shuffling."""
        n = len(self.dataset)
        order = torch.randperm(n).numpy() if self.shuffle else np.arange(n)
        starts = self._starts()
        stops = starts[1:] + [n] if starts else []
        # Sorted rows read memory in order; the order within a batch doesn't matter.
        return [np.sort(order[start:stop]) for start, stop in zip(starts, stops, strict=True)]

    def __iter__(self):
        on_device = self._on_device()
        if on_device is not None:
            yield from self._iter_on_device(*on_device)
            return
        X, y = self.dataset.X, self.dataset.y
        for rows in self._batch_rows():
            # Indexing copies, so read-only inputs (memmaps) give writable tensors.
            Xb = _map_arrays(X, lambda array, rows=rows: torch.from_numpy(array[rows]))
            yb = torch.from_numpy(y[rows]) if y is not None else torch.zeros(len(rows))
            yield Xb, yb

    def _iter_on_device(self, X, y):
        """Yield the batches gathered from tensors ``X`` and ``y`` on their device."""
        batches = self._batch_rows()
        if not batches:
            return
        # The same batches as from the host arrays; their rows sent to the device at once.
        rows = torch.from_numpy(np.concatenate(batches)).to(self.device)
        for rows_b in rows.split([len(b) for b in batches]):
            Xb = _map_arrays(X, lambda tensor, rows=rows_b: tensor[rows])
            yb = y[rows_b] if y is not None else torch.zeros(len(rows_b), device=rows_b.device)
            yield Xb, yb


def _tensor_list(params):
    """Return ``params``, a tensor or an iterable of them, as a list."""
    return [params] if isinstance(params, torch.Tensor) else list(params)


def _fused_adamw_runs_on(groups):
    """Return whether torch has a fused AdamW kernel for the device of every parameter.

    ``groups`` is a list of param groups, dicts with a list of tensors or of (name, tensor)
    pairs as "params". torch fuses AdamW on CUDA, and on the CPU since torch 2.4.
    """
    items = [item for group in groups for item in group["params"]]
    tensors = [item[1] if isinstance(item, tuple) else item for item in items]
    devices = {"cuda", "cpu"} if torch.__version__ >= "2.4" else {"cuda"}
    return bool(tensors) and all(tensor.device.type in devices for tensor in tensors)


def _without_compiler_import(method, *args):
    """Call ``method``, torch's optimizer method wrapped for ``torch.compile``, unwrapped.

    torch wraps several methods of its optimizers so that its compiler leaves them alone,
    and the wrapper imports ``torch._dynamo`` on its first call in a process: about 0.8 s on
    2 cores (BENCHMARKS.md), most of a small fit's time. Nothing skdigits runs is compiled,
    so until something else has imported ``torch._dynamo`` the function inside the wrapper
    (``__wrapped__``, as ``functools.wraps`` keeps it) is called instead. Once it is
    imported, or where torch keeps no inner function, ``method`` runs as in torch.
    """
    inner = getattr(method, "__wrapped__", None)
    if inner is None or "torch._dynamo" in sys.modules:
        return method(*args)
    return inner(*args)


class AdamW(torch.optim.AdamW):
    """torch's AdamW, fused where torch can, which asks no GPU anything on the CPU.

    ``fused=None`` (the default here) uses torch's fused kernel, one pass over all the
    parameters, where torch has one for their device: CUDA, and the CPU since torch 2.4.
    torch's own default on the CPU is a loop of small operations per parameter, which took
    1.3 ms of a 20 ms training step of the default network on MNIST (BENCHMARKS.md).

    Before each step, torch's optimizers ask CUDA whether a graph is being captured whenever
    the machine has a GPU, even when every parameter is on the CPU. That question initialises
    CUDA in every process that fits on the CPU (each worker of a search), and a child forked
    after it fails with "CUDA error: initialization error" (seen on an H200 with torch 2.11).
    While every parameter is on the CPU no graph can be captured, so the check is skipped;
    otherwise it runs as in torch.

    Creating the optimizer, stepping and zeroing the gradients do not import torch's
    compiler, which torch's optimizers do on their first use in a process (see
    ``_without_compiler_import``); the arithmetic is torch's.
    """

    def __init__(self, params, *args, fused=None, **kwargs):
        # As torch takes them: tensors, or param groups (dicts) of tensors; read twice here.
        params = _tensor_list(params)
        if params and not isinstance(params[0], dict):
            params = [{"params": params}]
        params = [{**group, "params": _tensor_list(group["params"])} for group in params]
        # torch refuses fused with foreach or differentiable: those keep torch's default.
        if fused is None and not (kwargs.get("foreach") or kwargs.get("differentiable")):
            fused = _fused_adamw_runs_on(params) or None
        super().__init__(params, *args, fused=fused, **kwargs)

    def add_param_group(self, param_group):
        _without_compiler_import(torch.optim.Optimizer.add_param_group, self, param_group)

    def zero_grad(self, set_to_none=True):
        _without_compiler_import(torch.optim.Optimizer.zero_grad, self, set_to_none)

    def step(self, closure=None):
        # torch's wrapper around step also sets whether autograd records, as here.
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return _without_compiler_import(torch.optim.AdamW.step, self, closure)

    def _on_cpu(self):
        return all(p.device.type == "cpu" for group in self.param_groups for p in group["params"])

    # The check as recent torch names it, and as older torch (2.2 for one) did.
    def _accelerator_graph_capture_health_check(self):
        if not self._on_cpu():
            super()._accelerator_graph_capture_health_check()

    def _cuda_graph_capture_health_check(self):
        if not self._on_cpu():
            super()._cuda_graph_capture_health_check()


class DigitNet(NeuralNetClassifier):
    """skorch's classifier net, with loss weights, ensembles, and optionally no optimizer.

    Weighted images come as a dict ``{"X": images, "sample_weight": weights}`` (weights of
    mean 1 over the data); the network sees the images only, and the loss of each image is
    multiplied by its weight. The criterion must not reduce (``reduction="none"``): the
    mean over the batch happens here, so that a batch's loss is the same average with or
    without weights of 1. An ensemble's networks each get their own loss while training
    (their logits come stacked, see DigitEnsemble), averaged over the networks.

    A model loaded from a file predicts, and ``fit`` always trains a new net; creating an
    optimizer would be wasted work that loading a model file should not cost.

    Parameters
    ----------
    module : type of torch.nn.Module
        The network, as for :class:`skorch.NeuralNetClassifier`.
    predict_only : bool, default=False
        Create no optimizer; the net can predict but not train.
    training_dtype : torch.dtype, default=None
        Run the network's forward pass under autocast to this dtype while training (mixed
        precision: the weights, their gradients and the loss stay float32); None trains in
        float32. Prediction is always float32.
    **kwargs
        Everything else :class:`skorch.NeuralNetClassifier` takes.
    """

    def __init__(self, module, *, predict_only=False, training_dtype=None, **kwargs):
        super().__init__(module, **kwargs)
        self.predict_only = predict_only
        self.training_dtype = training_dtype

    def initialize_optimizer(self, *args, **kwargs):
        if self.predict_only:
            return self
        return super().initialize_optimizer(*args, **kwargs)

    def infer(self, x, **fit_params):
        if isinstance(x, dict):
            x = x["X"]
        if self.training_dtype is None or not self.module_.training:
            return super().infer(x, **fit_params)
        with torch.autocast(torch.device(self.device).type, dtype=self.training_dtype):
            return super().infer(x, **fit_params).float()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if y_pred.dim() == 3:
            # An ensemble while training (DigitEnsemble): each network's own loss, averaged
            # over the networks, so that each learns as it would alone (AdamW's steps do
            # not depend on the scale of the gradients).
            n_networks = len(y_pred)
            y_true = torch.as_tensor(y_true, device=y_pred.device).repeat(n_networks)
            losses = super().get_loss(y_pred.flatten(0, 1), y_true, X=None, training=training)
            losses = losses.view(n_networks, -1).mean(dim=0)
        else:
            losses = super().get_loss(y_pred, y_true, X=X, training=training)
        if isinstance(X, dict):
            losses = losses * X["sample_weight"].to(losses.device, losses.dtype)
        return losses.mean()
