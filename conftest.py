"""pytest's collection of the package's doctests: skip modules whose extra is missing."""

import importlib.util

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
