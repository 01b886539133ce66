"""pytest's collection of the package's doctests: skip modules whose extra is missing."""

import importlib.util

# skdigits.onnx needs the onnx extra; without it, importing the module for its doctests
# would fail the collection instead of skipping.
collect_ignore = [] if importlib.util.find_spec("skl2onnx") else ["skdigits/onnx.py"]
