"""The pretrained model that ships with skdigits."""

from importlib import resources

from ._model_files import load

PRETRAINED_FILE = "pretrained.skd"


def load_pretrained(device="cpu"):
    """Return the pretrained digit reader shipped with skdigits, ready to predict.

    A :class:`~sklearn.pipeline.Pipeline` of a :class:`DigitNormalizer` and a
    :class:`CNNDigitClassifier` trained on the 60,000 MNIST training images with the
    ensemble of two networks of the accuracy preset (with a tenth held out for early
    stopping and calibration) for 24 epochs and random affine augmentation (rotation,
    scaling, shifts) for robustness to real handwriting, seed 0, by
    ``scripts/train_pretrained.py``. Its accuracy on the 10,000 MNIST test images is 99.71%
    (see BENCHMARKS.md, which also gives its accuracy on scans of digits and numbers). It
    predicts image files, PIL images and arrays of any size, dark ink on light paper or
    light on dark.

    Parameters
    ----------
    device : str, default="cpu"
        Torch device to predict on: "cpu", "cuda", "cuda:N" or "auto".

    Returns
    -------
    model : Pipeline
        The fitted pipeline; ``model[-1]`` is the classifier, whose ``classes_`` are the
        digits 0 to 9.

    See Also
    --------
    skdigits.read_numbers : Read numbers of several digits with this model.

    Examples
    --------
    >>> import numpy as np
    >>> import skdigits
    >>> model = skdigits.load_pretrained()
    >>> page = np.full((90, 70), 230, dtype=np.uint8)  # light paper
    >>> page[20:70, 32:38] = 40  # a dark vertical stroke
    >>> model.predict([page])
    array([1])
    """
    path = resources.files("skdigits") / "data" / PRETRAINED_FILE
    with resources.as_file(path) as file:
        return load(file, device=device)
