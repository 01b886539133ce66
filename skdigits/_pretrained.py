"""The pretrained model that ships with skdigits, and fine-tuning a trained model."""

import copy
import os
from importlib import resources
from numbers import Integral, Real

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._classifier import CNNDigitClassifier
from ._compat import HasMethods, Interval, StrOptions, _fit_context
from ._model_files import load

PRETRAINED_FILE = "pretrained.skd"
#: Peak learning rate of fine-tuning: gentler than training from scratch (5e-3 or 0.01), so
#: that the model keeps what it knows (BENCHMARKS.md, "Your own images").
FINE_TUNE_LR = 1e-3
# What fine-tuning sets unless told otherwise: the epochs, patience and augmentation that
# suit the new images' number, at the gentler rate.
_FINE_TUNING = {"max_epochs": "auto", "patience": "auto", "augment": "auto", "lr": FINE_TUNE_LR}


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


def fine_tune(
    model, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None, **params
):
    """Return a copy of a fitted model, trained further on new images.

    The copy's classifier starts from the model's weights (``warm_start=True``) and trains
    with the epochs, patience and augmentation that "auto" gives the new images' number, at
    a peak learning rate of 1e-3 instead of the 5e-3 or 0.01 of training from scratch, holding
    out the model's ``validation_fraction`` of the images to stop early on and calibrate
    with. With ``validation_fraction=0`` every image trains for the whole schedule and the
    model keeps its calibration (``temperature_``) where the classes stay the same.
    A pipeline's earlier steps (the :class:`DigitNormalizer` of
    :func:`load_pretrained` and of models written by ``skdigits train``) are kept as they
    were fitted: the new images are normalised exactly as the model's training images
    were. Where the new classes differ from the model's (letters instead of digits), a new
    output layer is trained. ``model`` itself is left as it is, so one model can be
    fine-tuned on each fold of a cross-validation. ``skdigits train --from MODEL`` does the
    same from the command line.

    Parameters
    ----------
    model : CNNDigitClassifier or Pipeline
        A fitted classifier, or a fitted pipeline that ends with one, such as
        ``skdigits.load_pretrained()``.
    X : array-like or list
        The new images, in any form the model's first step reads: image files, PIL images
        or arrays through a pipeline, arrays for a bare classifier.
    y : array-like of shape (n_samples,)
        Their labels.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the images in the loss, as in :meth:`CNNDigitClassifier.fit`.
    X_val : array-like or list, default=None
        Images of your own to stop early on and calibrate with, instead of holding out
        ``validation_fraction`` of ``X``, as in :meth:`CNNDigitClassifier.fit`; a pipeline
        normalises them as it normalises ``X``. Requires ``y_val``.
    y_val : array-like of shape (n_val,), default=None
        Labels of ``X_val``.
    sample_weight_val : array-like of shape (n_val,), default=None
        Weights of ``X_val`` in the validation loss.
    **params
        Classifier parameters that replace the fine-tuning ones (``lr=3e-4``,
        ``max_epochs=10``) or the model's own (``random_state``, ``device``, ``verbose``,
        ``validation_fraction``).
        The network's shape (``channels`` and the like) cannot change.

    Returns
    -------
    tuned : CNNDigitClassifier or Pipeline
        The fine-tuned copy, of the same kind as ``model``.

    See Also
    --------
    FineTunedClassifier : The same as an estimator, for cross-validation and searches.
    load_pretrained : The model to fine-tune when your own images are few.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import skdigits
    >>> X, y = load_digits(return_X_y=True)
    >>> base = skdigits.CNNDigitClassifier(channels=(4, 8), max_epochs=2, random_state=0)
    >>> base = base.fit(X[:200], y[:200])
    >>> tuned = skdigits.fine_tune(base, X[200:400], y[200:400], max_epochs=2)
    >>> tuned is base, tuned.warm_start, base.warm_start
    (False, True, False)

    Fine-tuning the bundled model on your own labelled images:

    >>> model = skdigits.load_pretrained()
    >>> paths, labels = skdigits.datasets.list_image_folder("my_digits")  # doctest: +SKIP
    >>> mine = skdigits.fine_tune(model, paths, labels)  # doctest: +SKIP
    """
    clf = _last_step(model)
    if not isinstance(clf, CNNDigitClassifier):
        raise TypeError(
            "fine_tune needs a CNNDigitClassifier or a pipeline that ends with one; got "
            f"{type(clf).__name__}"
        )
    check_is_fitted(clf)
    if "warm_start" in params:
        raise ValueError("fine_tune always starts from the model's weights: drop warm_start")
    # Before the pipeline reads what may be thousands of files.
    check_consistent_length(X, y, sample_weight)
    if X_val is not None or y_val is not None:
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together")
        check_consistent_length(X_val, y_val, sample_weight_val)
    tuned = copy.deepcopy(model)
    clf = _last_step(tuned)
    clf.set_params(warm_start=True, **{**_FINE_TUNING, **params})
    if isinstance(tuned, Pipeline):
        X = tuned[:-1].transform(X)
        if X_val is not None:
            X_val = tuned[:-1].transform(X_val)
    clf.fit(X, y, sample_weight, X_val=X_val, y_val=y_val, sample_weight_val=sample_weight_val)
    return tuned


class FineTunedClassifier(ClassifierMixin, BaseEstimator):
    """A trained model fine-tuned on your images, as an estimator of its own.

    ``fit`` does what :func:`fine_tune` does: it takes a copy of ``model`` (by default the
    bundled one, :func:`load_pretrained`) and trains it further on ``X``. Unlike the function,
    this estimator can be cloned, so :func:`~sklearn.model_selection.cross_val_score`,
    :class:`~sklearn.model_selection.GridSearchCV` and the like fine-tune the model afresh
    on each fold, and the fine-tuning settings are parameters to search over. Where your
    own images are few, this is how to use what the model learned from MNIST: on 50 of
    scikit-learn's 8x8 digits, fine-tuning the bundled model reads the other 1,747 at 98.4%
    against 91.3% for a network trained from scratch (BENCHMARKS.md, "Other digit data").

    Parameters
    ----------
    model : "pretrained", str, path-like, FrozenEstimator, CNNDigitClassifier or Pipeline, \
            default="pretrained"
        The model to start from: "pretrained" for :func:`load_pretrained`; the path of a
        model file written by :func:`skdigits.save` or ``skdigits train``, read at each
        ``fit`` by :func:`skdigits.load`; or a fitted classifier, or pipeline ending with
        one, in memory. :func:`~sklearn.base.clone`, which searches and cross-validation
        call, returns an unfitted copy of a fitted estimator, so wrap one in memory in
        :class:`sklearn.frozen.FrozenEstimator` for them. The model itself is never changed.
    lr : float, default=1e-3
        Peak learning rate of the one-cycle schedule, gentler than training from scratch
        (5e-3 or 0.01) so that the model keeps what it knows.
    max_epochs : int or "auto", default="auto"
        Passes over ``X``; "auto" is what :class:`CNNDigitClassifier` gives that many images.
    patience : int or "auto", default="auto"
        Epochs without improvement of the validation loss before training stops.
    augment : float or "auto", default="auto"
        Strength of the random affine augmentation, as in :class:`CNNDigitClassifier`.
    validation_fraction : float or None, default=None
        Share of ``X`` held out, stratified, to stop early on and calibrate with; None keeps
        the model's own (a tenth for the bundled model). With 0, every image trains for
        ``max_epochs`` and the model keeps its calibration: on a few hundred images of other
        handwriting that read more, on scans like MNIST's less (BENCHMARKS.md), so it is
        worth a search.
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling, augmentation, the validation split and a new output layer. An int
        gives identical predictions across fits in the same environment.
    device : str, default="auto"
        Torch device to train and predict on: "cpu", "cuda", "cuda:N", or "auto" for a CUDA
        GPU when one is available.
    verbose : int, default=0
        Print a table of the training progress per epoch when positive.
    n_threads : int or None, default=None
        Number of torch threads for fit and predict, as in :class:`CNNDigitClassifier`.

    Attributes
    ----------
    model_ : CNNDigitClassifier or Pipeline
        The fine-tuned copy of ``model``, which predicts. :func:`skdigits.save` writes it,
        and :func:`skdigits.load` gives it back.
    classes_ : ndarray of shape (n_classes,)
        Class labels, those of ``y``.

    See Also
    --------
    fine_tune : The same, as a function of a fitted model.
    load_pretrained : The model fine-tuned by default.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.model_selection import cross_val_score
    >>> import skdigits
    >>> X, y = load_digits(return_X_y=True)
    >>> base = skdigits.CNNDigitClassifier(channels=(4, 8), max_epochs=2, random_state=0)
    >>> base = base.fit(X[:200], y[:200])
    >>> tuner = skdigits.FineTunedClassifier(FrozenEstimator(base), max_epochs=2, random_state=0)
    >>> scores = cross_val_score(tuner, X[200:500], y[200:500], cv=3)
    >>> scores.shape
    (3,)

    The bundled model, fine-tuned on the files of your own digits:

    >>> paths, labels = skdigits.datasets.list_image_folder("my_digits")  # doctest: +SKIP
    >>> cross_val_score(skdigits.FineTunedClassifier(), paths, labels, cv=5)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "model": [str, os.PathLike, HasMethods(["predict"])],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "patience": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "augment": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        model="pretrained",
        *,
        lr=FINE_TUNE_LR,
        max_epochs="auto",
        patience="auto",
        augment="auto",
        validation_fraction=None,
        random_state=None,
        device="auto",
        verbose=0,
        n_threads=None,
    ):
        self.model = model
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.augment = augment
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.n_threads = n_threads

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fine-tune a copy of ``model`` on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like or list
            The images, in any form the model's first step reads: image files, PIL images
            or arrays through a pipeline (such as the bundled model), arrays for a bare
            classifier.
        y : array-like of shape (n_samples,)
            Their labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the images in the loss, as in :meth:`CNNDigitClassifier.fit`.
        X_val : array-like or list, default=None
            Images to stop early on and calibrate with, instead of holding out
            ``validation_fraction`` of ``X``; a pipeline normalises them as it normalises
            ``X``. Requires ``y_val``.
        y_val : array-like of shape (n_val,), default=None
            Labels of ``X_val``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of ``X_val`` in the validation loss.

        Returns
        -------
        self : FineTunedClassifier
            The fitted estimator.
        """
        # Checked before a model file is read, and before a pipeline reads image files.
        check_consistent_length(X, y, sample_weight)
        model = self._base_model()
        # None: the model's own split.
        split = (
            {}
            if self.validation_fraction is None
            else {"validation_fraction": self.validation_fraction}
        )
        self.model_ = fine_tune(
            model,
            X,
            y,
            sample_weight,
            X_val=X_val,
            y_val=y_val,
            sample_weight_val=sample_weight_val,
            lr=self.lr,
            max_epochs=self.max_epochs,
            patience=self.patience,
            augment=self.augment,
            random_state=self.random_state,
            device=self.device,
            verbose=self.verbose,
            n_threads=self.n_threads,
            **split,
        )
        self.classes_ = _last_step(self.model_).classes_
        return self

    def _base_model(self):
        """Return the fitted model that ``model`` names."""
        model = self.model
        if isinstance(model, str) and model == "pretrained":
            return load_pretrained(device=self.device)
        if isinstance(model, str | os.PathLike):
            return load(model, device=self.device)
        if isinstance(model, FrozenEstimator):
            model = model.estimator
        clf = _last_step(model)
        if isinstance(clf, CNNDigitClassifier):
            try:
                check_is_fitted(clf)
            except NotFittedError:
                raise NotFittedError(
                    "FineTunedClassifier's model is an unfitted CNNDigitClassifier. clone(), "
                    "which cross-validation and searches call, returns an unfitted copy of a "
                    "fitted model: give sklearn.frozen.FrozenEstimator(model), the path of a "
                    "saved model, or 'pretrained'"
                ) from None
        return model

    def predict(self, X):
        """Return the predicted class of each image in ``X``.

        Parameters
        ----------
        X : array-like or list
            Images, in any form ``fit`` takes.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        check_is_fitted(self)
        return self.model_.predict(X)

    def predict_proba(self, X):
        """Return the probability of each class for each image in ``X``, as ``model_`` does.

        Parameters
        ----------
        X : array-like or list
            Images, in any form ``fit`` takes.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.model_.predict_proba(X)

    def predict_log_proba(self, X):
        """Return the log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like or list
            Images, in any form ``fit`` takes.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.model_.predict_log_proba(X)


def _last_step(model):
    """Return the last step of a pipeline, or the model itself."""
    return model[-1] if isinstance(model, Pipeline) else model


def _predicting_model(model):
    """Return the fine-tuned model a FineTunedClassifier predicts with, or ``model`` itself."""
    if isinstance(model, FineTunedClassifier):
        check_is_fitted(model)
        return model.model_
    return model
