"""CNNDigitClassifier: a scikit-learn classifier that trains a CNN through skorch."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ._images import pixel_range, validate_images
from ._networks import DigitCNN
from ._persistence import save_model
from ._training import BatchIterator


class CNNDigitClassifier(ClassifierMixin, BaseEstimator):
    """Convolutional neural network classifier for digit images.

    Trains a small batch-normalised CNN (see :class:`~skdigits._networks.DigitCNN`) with
    AdamW and a one-cycle learning-rate schedule through skorch. A stratified part of the
    training data is held out for early stopping, and the weights of the epoch with the
    lowest validation loss are restored at the end, as Keras' ``restore_best_weights`` does.

    The input may be flat rows of pixels ``(n_samples, height * width)``, images
    ``(n_samples, height, width)``, single-channel images ``(n_samples, 1, height, width)``
    or ``(n_samples, height, width, 1)``, or a DataFrame of pixel columns. Any pixel scale
    works (uint8 0..255, floats 0..1, 0..16, -1..1): the range is learned in ``fit``, and
    data is converted to float32 one batch at a time, so uint8 data stays uint8 in memory.

    Parameters
    ----------
    channels : tuple of int, default=(16, 16, 64)
        Output channels of each convolutional stage; each stage after the first halves the
        image size, and so does the first when it is strided (see ``stem``).
    hidden_units : int, default=128
        Width of the dense layer between the convolutional stages and the output.
    dropout : float, default=0.1
        Dropout probability before the output layer.
    augment : float, default=0.0
        Strength of random affine augmentation during training (rotation up to 12 degrees,
        scaling and shifts up to 10% at ``augment=1``); 0 turns it off.
    stem : {"auto", "strided", "full"}, default="auto"
        First convolution: "strided" is a 4x4 convolution of stride 2, which halves the image
        size at once, so the next stage works on a quarter of the pixels; "full" is a 3x3
        convolution at full resolution, slower and more accurate. "auto" is "strided" on
        images of 16 pixels a side or more and "full" on smaller ones.
    image_shape : tuple of two int, default=None
        ``(height, width)`` of images given as flat rows. ``None`` infers a square shape;
        one side may be -1, as in ``numpy.reshape``. Must agree with image-shaped input.
    lr : float, default=5e-3
        Peak learning rate of the one-cycle schedule.
    weight_decay : float, default=5e-4
        AdamW weight decay.
    label_smoothing : float, default=0.1
        Label smoothing of the cross-entropy loss.
    batch_size : int or "auto", default="auto"
        Number of images per training step. "auto" takes ``n_train // 64`` clipped to
        32..256, so small datasets still get enough steps per epoch.
    max_epochs : int, default=8
        Number of passes over the training data; the learning-rate schedule spans them.
    patience : int, default=5
        Stop after this many epochs without improvement of the validation loss.
    validation_fraction : float, default=0.1
        Fraction of the training data held out, stratified, for early stopping. With 0, or
        too little data to give every class a sample on both sides, all data is used for
        training during ``max_epochs`` epochs.
    device : str, default="auto"
        Torch device to train and predict on: "cpu", "cuda", "cuda:N", or "auto" for a CUDA
        GPU when one is available.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, augmentation and the validation split. An int
        gives identical predictions across fits in the same environment.
    verbose : int, default=0
        Print a table of the training progress per epoch when positive.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks run during training, after the learning-rate schedule and
        early stopping, e.g. ``skorch.callbacks.ProgressBar()``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_features_in_ : int
        Number of pixels per image seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame seen during ``fit``.
    image_shape_ : tuple of two int
        ``(height, width)`` of the training images.
    pixel_range_ : tuple of two float
        ``(low, span)`` learned from the training pixels; pixels are scaled by
        ``(x - low) / span``.
    net_ : skorch.NeuralNetClassifier
        The fitted skorch net, for power users.
    history_ : skorch.History
        Per-epoch record: ``train_loss``, ``valid_loss``, ``valid_acc``, ``dur`` (seconds).
    best_epoch_ : int
        Epoch (counted from 1) whose weights were kept: the lowest validation loss, or the
        last epoch without validation.
    n_iter_ : int
        Number of epochs run.

    See Also
    --------
    ImageTransformer : Reshape and scale pixel rows into images, for pipelines.
    sklearn.neural_network.MLPClassifier : Multi-layer perceptron classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from skdigits import CNNDigitClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> clf = CNNDigitClassifier(random_state=0).fit(X_train, y_train)
    >>> clf.image_shape_
    (8, 8)
    >>> clf.score(X_test, y_test) > 0.95
    True
    """

    _parameter_constraints: dict = {
        "channels": [tuple, list],
        "hidden_units": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "augment": [Interval(Real, 0, None, closed="left")],
        "stem": [StrOptions({"auto", "strided", "full"})],
        "image_shape": [tuple, list, None],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        *,
        channels=(16, 16, 64),
        hidden_units=128,
        dropout=0.1,
        augment=0.0,
        stem="auto",
        image_shape=None,
        lr=5e-3,
        weight_decay=5e-4,
        label_smoothing=0.1,
        batch_size="auto",
        max_epochs=8,
        patience=5,
        validation_fraction=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.channels = channels
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.augment = augment
        self.stem = stem
        self.image_shape = image_shape
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Training images.
        y : array-like of shape (n_samples,)
            Class labels: ints, strings or bools.

        Returns
        -------
        self : CNNDigitClassifier
            The fitted classifier.
        """
        if not all(isinstance(c, Integral) and c > 0 for c in self.channels) or not len(
            self.channels
        ):
            raise ValueError(
                f"channels must be a non-empty sequence of positive ints; got {self.channels!r}"
            )
        device = _resolve_device(self.device)
        X, y = validate_images(self, X, y, reset=True)
        if self.stem == "strided" and min(self.image_shape_) < 4:
            raise ValueError(
                f"stem='strided' needs images of at least 4x4 pixels; these are "
                f"{self.image_shape_[0]}x{self.image_shape_[1]}. Use stem='auto' or 'full'."
            )
        check_classification_targets(y)
        self.classes_, y = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, but the data "
                f"contains only one class: {self.classes_[0]!r}"
            )
        self.pixel_range_ = pixel_range(X)
        rng = check_random_state(self.random_state)
        train, valid = self._split(y, rng)

        batch_size = self.batch_size
        if batch_size == "auto":
            batch_size = min(256, max(32, len(train) // 64))
        net = self._new_net(
            device,
            batch_size=batch_size,
            iterator_train__shuffle=True,
            train_split=None if valid is None else predefined_split(Dataset(X[valid], y[valid])),
            callbacks=self._callbacks(len(train), batch_size, validate=valid is not None),
        )
        with torch.random.fork_rng(devices=_cuda_devices(device)):
            # A private RNG stream: fitting never disturbs the user's global torch seed.
            torch.manual_seed(rng.randint(2**31))
            net.fit(X[train], y[train])
        self._warn_if_interrupted(net)
        self.net_ = net
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        stopping = dict(net.callbacks_).get("early_stopping")
        # The epoch whose weights early stopping restored; the last one without validation.
        self.best_epoch_ = stopping.best_epoch_ if stopping is not None else self.n_iter_
        return self

    def _warn_if_interrupted(self, net):
        """Warn when Ctrl-C ended training, dropping the epoch it cut short from the history.

        skorch stops training on KeyboardInterrupt and early stopping restores the best
        weights seen so far, so the estimator stays usable; the user should know it is not
        the model they asked for.
        """
        history = net.history
        if history and "train_loss" not in history[-1]:
            del history[-1]
        stopping = dict(net.callbacks_).get("early_stopping")
        stopped_early = stopping is not None and stopping.misses_ >= stopping.patience
        if len(history) < self.max_epochs and not stopped_early:
            warnings.warn(
                f"training was interrupted after {len(history)} of {self.max_epochs} epochs; "
                "the classifier keeps the best weights seen so far",
                UserWarning,
                stacklevel=3,
            )

    def _new_net(self, device, **kwargs):
        """Return an unfitted skorch net for the fitted image shape, classes and pixel range."""
        return NeuralNetClassifier(
            module=DigitCNN,
            module__image_shape=self.image_shape_,
            module__n_classes=len(self.classes_),
            module__channels=tuple(self.channels),
            module__hidden_units=self.hidden_units,
            module__dropout=self.dropout,
            module__augment=self.augment,
            module__stem=self.stem,
            module__pixel_low=self.pixel_range_[0],
            module__pixel_span=self.pixel_range_[1],
            criterion=torch.nn.CrossEntropyLoss,
            criterion__label_smoothing=self.label_smoothing,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=self.max_epochs,
            iterator_train=BatchIterator,
            iterator_valid=BatchIterator,
            # Batches of a few hundred images keep activations in the CPU caches when
            # predicting; larger ones run markedly slower.
            iterator_valid__batch_size=256,
            device=device,
            verbose=self.verbose,
            **kwargs,
        )

    def _split(self, y, rng):
        """Return the indices to train on and to validate on (None without validation)."""
        everything = np.arange(len(y))
        n_classes = len(self.classes_)
        n_valid = int(np.ceil(self.validation_fraction * len(y)))
        if n_valid < n_classes or len(y) - n_valid < n_classes or np.bincount(y).min() < 2:
            return everything, None
        splitter = StratifiedShuffleSplit(
            n_splits=1, test_size=n_valid, random_state=rng.randint(2**31)
        )
        return next(splitter.split(everything, y))

    def _callbacks(self, n_train, batch_size, validate):
        """Return the skorch callbacks: the learning-rate schedule and early stopping."""
        steps_per_epoch = len(BatchIterator(range(n_train), batch_size, shuffle=True))
        schedule = LRScheduler(
            policy=torch.optim.lr_scheduler.OneCycleLR,
            max_lr=self.lr,
            total_steps=self.max_epochs * steps_per_epoch,
            step_every="batch",
        )
        callbacks = [("lr_schedule", schedule)]
        if validate:
            # threshold=0: any improvement counts, as in the history's valid_loss_best.
            stopping = EarlyStopping(
                monitor="valid_loss", patience=self.patience, threshold=0, load_best=True
            )
            callbacks.append(("early_stopping", stopping))
        return callbacks + list(self.callbacks or [])

    def predict_proba(self, X):
        """Return the probability of each class for each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Images of the shape seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns ordered as ``classes_``.
        """
        check_is_fitted(self)
        X = validate_images(self, X, reset=False)
        # Each batch's probabilities go straight into the output array. skorch's own
        # predict_proba keeps every batch's tensor until the end, and those many small
        # blocks scattered among the freed batch buffers make the process hold on to memory
        # in proportion to the number of images.
        proba = np.empty((len(X), len(self.classes_)))
        start = 0
        for logits in self.net_.forward_iter(X, training=False):
            stop = start + len(logits)
            proba[start:stop] = torch.softmax(logits, dim=1).numpy()
            start = stop
        return proba

    def predict_log_proba(self, X):
        """Return the log of the probability of each class for each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Images of the shape seen in ``fit``.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns ordered as ``classes_``.
        """
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Return the predicted label of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Images of the shape seen in ``fit``.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, of the kind given to ``fit``.
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def save(self, path):
        """Write the fitted classifier to ``path`` as a safe model file.

        The file holds the network weights (safetensors) and everything else as JSON; it
        is written to a temporary file and renamed, so an existing file is never left
        half-written. Read it back with :func:`skdigits.load`, which never runs code from
        the file, unlike pickle.

        Parameters
        ----------
        path : str or path-like
            Where to write the model file.

        Returns
        -------
        self : CNNDigitClassifier
            The classifier, unchanged.
        """
        check_is_fitted(self)
        save_model(self, path)
        return self


def _resolve_device(device):
    """Return the torch device name to use, checking that it exists before any training."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'auto'"
        ) from error
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is available; use 'cpu' or 'auto'")
    return device


def _cuda_devices(device):
    """Return the CUDA devices whose random state fitting on ``device`` may change."""
    return [torch.device(device)] if torch.device(device).type == "cuda" else []
