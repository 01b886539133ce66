"""skdigits: a convolutional neural network for digit images as a scikit-learn estimator."""

from ._classifier import CNNDigitClassifier
from ._normalizer import DigitNormalizer
from ._persistence import load
from ._transformer import ImageTransformer

__version__ = "0.1.0"

__all__ = ["CNNDigitClassifier", "DigitNormalizer", "ImageTransformer", "__version__", "load"]
