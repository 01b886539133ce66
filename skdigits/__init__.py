"""skdigits: a convolutional neural network for digit images as a scikit-learn estimator."""

from . import _threads  # noqa: F401  (registers a fork guard for torch's threads)
from ._classifier import PRESETS, CNNDigitClassifier
from ._model_files import load, save
from ._normalizer import DigitNormalizer
from ._numbers import read_numbers
from ._persistence import check_model_path
from ._pretrained import FineTunedClassifier, fine_tune, load_pretrained
from ._transformer import ImageTransformer
from ._version import __version__

__all__ = [
    "CNNDigitClassifier",
    "DigitNormalizer",
    "FineTunedClassifier",
    "ImageTransformer",
    "PRESETS",
    "__version__",
    "check_model_path",
    "fine_tune",
    "load",
    "load_pretrained",
    "read_numbers",
    "save",
]
