"""save and load: a fitted classifier or normaliser pipeline to and from one safe file.

The estimators convert themselves to plain data (``to_state``/``from_state``); the file
format lives in :mod:`skdigits._persistence`; this module says what a model is made of.
"""

import inspect
import os

from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._classifier import CNNDigitClassifier
from ._normalizer import DigitNormalizer
from ._persistence import read_model_file, write_model_file
from ._state import field, is_dict

_SUPPORTED = (
    "a fitted CNNDigitClassifier, a fitted Pipeline of exactly two steps: a DigitNormalizer "
    "then a CNNDigitClassifier, or a fitted FineTunedClassifier of either"
)


def save(model, path, *, metadata=None):
    """Write a fitted classifier or pipeline to ``path`` as one safe model file.

    The file is a standard safetensors file: the network weights as tensors, everything
    else as JSON in its metadata (see :doc:`/persistence`). It is written to a temporary
    file and renamed, so an existing file is never left half-written. Read it back with
    :func:`skdigits.load`, which never runs code from the file, unlike pickle.

    Parameters
    ----------
    model : CNNDigitClassifier, Pipeline or FineTunedClassifier
        A fitted classifier, or a fitted :class:`~sklearn.pipeline.Pipeline` whose steps are
        a :class:`DigitNormalizer` then a :class:`CNNDigitClassifier`, under any step names
        (as :func:`~sklearn.pipeline.make_pipeline` makes). The pipeline's ``memory`` and
        ``verbose`` settings are not stored. For a fitted :class:`FineTunedClassifier`, the
        fine-tuned model it predicts with (its ``model_``) is written, and :func:`load` gives
        that model back.
    path : str or path-like
        Where to write the file. An existing file is replaced only once the new one is
        completely written, and keeps its permission bits; through a symbolic link, the
        link's target is written. See :func:`check_model_path`.
    metadata : dict, default=None
        Anything to keep with the model, such as where it came from or which images were
        held out: a dict with string keys, and values None, bool, int, float, str, list or
        dict, nested at most 32 levels deep and at most 1 MB as JSON. Tuples are stored as
        lists and numpy scalars as Python numbers. :func:`skdigits.load` returns it with
        ``return_metadata=True``.

    Raises
    ------
    TypeError
        If ``model`` is neither of the supported kinds, or ``metadata`` holds a value JSON
        cannot store.
    sklearn.exceptions.NotFittedError
        If the classifier or the normaliser is not fitted.
    ValueError
        If ``metadata`` is too large or too deeply nested, the normaliser frames images in
        another shape than the classifier was fitted on, or ``path`` is a device.
    IsADirectoryError, FileNotFoundError
        If ``path`` is a directory, or its folder does not exist.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> from sklearn.pipeline import make_pipeline
    >>> import skdigits
    >>> from skdigits.datasets import load_digits
    >>> X, y = load_digits()
    >>> model = make_pipeline(
    ...     skdigits.DigitNormalizer(),
    ...     skdigits.CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0),
    ... ).fit(X[:300], y[:300])
    >>> with TemporaryDirectory() as folder:
    ...     path = Path(folder) / "digits.skd"
    ...     skdigits.save(model, path, metadata={"trained_on": "digits 0 to 299"})
    ...     # "auto": on the GPU the model trained on, where there is one. Loaded on another
    ...     # device (the default is the CPU), its probabilities can differ in the last digits.
    ...     loaded, metadata = skdigits.load(path, device="auto", return_metadata=True)
    >>> metadata
    {'trained_on': 'digits 0 to 299'}
    >>> bool((loaded.predict_proba(X) == model.predict_proba(X)).all())
    True
    """
    from ._pretrained import _predicting_model  # here: _pretrained imports this module

    names, normalizer, clf = _split_model(_predicting_model(model))
    check_is_fitted(clf)
    pipeline = None
    if normalizer is not None:
        check_is_fitted(normalizer)
        _check_steps_agree(normalizer, clf)
        pipeline = {"steps": names, "normalizer": normalizer.to_state()}
    write_model_file(path, *clf.to_state(), pipeline=pipeline, metadata=metadata)


def load(path, device="cpu", *, return_metadata=False):
    """Return the fitted classifier or pipeline stored in a model file.

    Loading runs no code from the file: it never unpickles and never imports, looks up or
    calls anything the file names. Every size the file declares is bounded and checked
    against the weights it carries before anything is built, so a file from an untrusted
    source can hold a bad model but cannot take over the machine, nor make loading take
    more than a small multiple of the file's size in memory (see :doc:`/persistence`).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`skdigits.save` or :meth:`CNNDigitClassifier.save`, by any
        version of skdigits up to this one.
    device : str, default="cpu"
        Torch device to predict on: "cpu", "cuda", "cuda:N", or "auto" for a CUDA GPU when
        one is available. Models saved on a GPU load on any device. The ``device``
        hyperparameter keeps its saved value and is used only when the model is refitted.
    return_metadata : bool, default=False
        Whether to return the metadata saved with the model as well.

    Returns
    -------
    model : CNNDigitClassifier or Pipeline
        The fitted model, predicting exactly as the saved one did: a classifier, or for a
        saved pipeline a :class:`~sklearn.pipeline.Pipeline` of a fitted
        :class:`DigitNormalizer` and the classifier, under the saved step names. The
        hyperparameters are the saved ones except those that held objects: a
        ``random_state`` RandomState and ``callbacks`` come back as None.
    metadata : dict
        Only with ``return_metadata=True``: the metadata given to :func:`skdigits.save`,
        as JSON gives it back (tuples as lists); ``{}`` if none was given.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a skdigits model file, is truncated, corrupted or modified, was
        written by a newer skdigits, or describes a model this version cannot build or
        beyond its bounds; the message names the field.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> from sklearn.datasets import load_digits
    >>> import skdigits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = skdigits.CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0)
    >>> clf = clf.fit(X[:300], y[:300])
    >>> with TemporaryDirectory() as folder:
    ...     path = Path(folder) / "digits.skd"
    ...     clf.save(path)
    ...     loaded = skdigits.load(path, device="auto")  # where it trained: see save()
    CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0)
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    try:
        stored = read_model_file(path)
        # The normaliser is read first: checking its fields costs nothing, building the
        # classifier's network costs a little.
        steps = None if stored.pipeline is None else _pipeline_steps(stored.pipeline)
        clf = CNNDigitClassifier.from_state(stored.tensors, stored.classifier, device)
    except ValueError as error:
        raise ValueError(f"cannot load {os.fspath(path)!r}: {error}") from None
    if steps is None:
        model = clf
    else:
        names, normalizer = steps
        try:
            _check_steps_agree(normalizer, clf)
        except ValueError as error:
            raise ValueError(f"cannot load {os.fspath(path)!r}: {error}") from None
        model = Pipeline([(names[0], normalizer), (names[1], clf)])
    return (model, stored.metadata) if return_metadata else model


def _split_model(model):
    """Return ``(step names, normaliser, classifier)``; the first two are None for a classifier.

    Raises a TypeError for any other kind of model.
    """
    if isinstance(model, CNNDigitClassifier):
        return None, None, model
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        if (
            len(steps) == 2
            and isinstance(steps[0], DigitNormalizer)
            and isinstance(steps[1], CNNDigitClassifier)
        ):
            return [name for name, _ in model.steps], steps[0], steps[1]
        kinds = ", ".join(type(step).__name__ for step in steps)
        raise TypeError(f"skdigits can save {_SUPPORTED}; got a Pipeline of {kinds}")
    raise TypeError(f"skdigits can save {_SUPPORTED}; got a {type(model).__name__}")


def _check_steps_agree(normalizer, clf):
    """Raise a ValueError unless the classifier takes the images the normaliser makes."""
    if tuple(normalizer.image_shape_) != tuple(clf.image_shape_):
        raise ValueError(
            f"the DigitNormalizer's image_shape_ {tuple(normalizer.image_shape_)} differs from "
            f"the CNNDigitClassifier's image_shape_ {tuple(clf.image_shape_)}, so the "
            "classifier cannot predict the images the normalizer makes; fit the pipeline as "
            "a whole"
        )


def _pipeline_steps(stored):
    """Return the step names and the fitted DigitNormalizer a pipeline's description holds."""
    names = field(stored, "steps", _is_step_names, "two distinct names of pipeline steps")
    described = field(stored, "normalizer", is_dict, "an object")
    try:
        normalizer = DigitNormalizer.from_state(described)
    except ValueError as error:
        raise ValueError(f"its DigitNormalizer: {error}") from None
    return names, normalizer


def _is_step_names(value):
    """Return whether ``value`` is a list of two names a Pipeline accepts for its steps."""
    # Pipeline checks its names only in fit; a loaded pipeline must already be valid.
    reserved = inspect.signature(Pipeline).parameters
    return (
        isinstance(value, list)
        and len(value) == 2
        and value[0] != value[1]
        and all(
            isinstance(name, str) and name and "__" not in name and name not in reserved
            for name in value
        )
    )
