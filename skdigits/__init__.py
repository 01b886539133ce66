"""skdigits: a convolutional neural network for digit images as a scikit-learn estimator."""

from ._classifier import PRESETS, CNNDigitClassifier
from ._normalizer import DigitNormalizer
from ._numbers import read_numbers
from ._persistence import load, save
from ._pretrained import load_pretrained
from ._transformer import ImageTransformer

__version__ = "0.1.0"

__all__ = [
    "CNNDigitClassifier",
    "DigitNormalizer",
    "ImageTransformer",
    "PRESETS",
    "__version__",
    "load",
    "load_pretrained",
    "read_numbers",
    "save",
]
