"""CNNDigitClassifier: a scikit-learn classifier that trains a CNN through skorch."""

import contextlib
import math
import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from skorch.history import History

from ._compat import Interval, StrOptions, _check_sample_weight, _fit_context
from ._images import (
    COLOUR_CHANNELS,
    check_image_shape,
    infer_image_shape,
    pixel_range,
    validate_images,
)
from ._networks import (
    AUTO_STAGES,
    LEGACY_STRIDED_STEM_MIN_SIZE,
    MAX_HIDDEN_UNITS,
    MAX_NETWORKS,
    DigitCNN,
    DigitEnsemble,
    check_channels,
    check_convs_per_stage,
    resolve_channels,
    resolve_stem,
)
from ._persistence import write_model_file
from ._state import (
    checked,
    classes_from_state,
    classes_to_state,
    field,
    history_from_state,
    is_count,
    is_dict,
    is_list,
    is_list_of_strings,
    is_number,
    is_positive_int,
    params_from_state,
    to_plain,
)
from ._threads import torch_threads
from ._training import AdamW, BatchIterator, DigitNet

# "auto" epochs (see CNNDigitClassifier._schedule): at least AUTO_EPOCHS, and more on
# smaller datasets, so that training takes at least MIN_AUTO_STEPS optimizer steps, or
# MIN_AUTO_STEPS_SMALL below AUGMENT_BELOW training images, where augmentation is at full
# strength (at most MAX_AUTO_EPOCHS). On 16x16 scans of 1,600 and 7,300 images, 2,000 steps
# gained about 0.1 point over 1,000 (benchmarks/other_data.py); 1,400 instead of 1,600 cost
# colour 8x8 digits (tests/test_colour.py) 7-40 points on three seeds of three. Full MNIST
# (54,000 training images in batches of 256, 211 steps an epoch) gets 6 epochs, 1,266 steps:
# with the learning rate and decay rate of AUTO_LR_LARGE and AUTO_BETA_2_LARGE they reached
# 99.55% +- 0.02 over eight seeds, every seed 99.53% or more, as 7 epochs did before with
# the small-data values (99.56% +- 0.03 over four), in 6/7 of the time (BENCHMARKS.md).
AUTO_EPOCHS = 6
MIN_AUTO_STEPS = 1200
MIN_AUTO_STEPS_SMALL = 1600
MAX_AUTO_EPOCHS = 100
# Augmentation strength of "auto": full below this many training images, where it makes up
# for missing data; above, half on images of at least AUGMENT_MIN_SIZE pixels a side, where
# full strength needs more than 8 epochs to pay off (on MNIST 0.5 gained 0.03 point over
# none, 1.0 none, in 8 epochs), and none on smaller ones, which it blurs (MNIST reduced to
# 8x8 lost 0.4 point; at 16x16 it changed nothing).
AUGMENT_BELOW = 10_000
AUGMENT_MIN_SIZE = 20
AUTO_AUGMENT_SMALL = 1.0
AUTO_AUGMENT_LARGE = 0.5
# Stroke-width augmentation of "auto": below AUGMENT_BELOW training images of at least
# STROKE_MIN_SIZE pixels a side. On the 16x16 semeion-like stand-in (1,593 images) 0.5
# gained 0.25 points over eight seeds, 1.0 less; on 8x8 digits it cost 0.3 points, and on
# full MNIST (with half-strength affine augmentation) it left a seed of four at 99.42%
# (BENCHMARKS.md, "Other digit data").
STROKE_MIN_SIZE = 16
AUTO_STROKE = 0.5
# The learning rate and AdamW's second decay rate of "auto": from AUGMENT_BELOW training
# images, where batches hold 256 images and the one-cycle schedule runs a few epochs, twice
# the rate and a shorter memory of the squared gradients. On MNIST, 6 epochs reached 99.55%
# +- 0.02 over eight seeds, every seed 99.53% or more, against 99.48% +- 0.05 with the
# values below (BENCHMARKS.md). Smaller data, in batches of 16-128, keeps those: a rate of
# 0.01 left the colour 8x8 digits of tests/test_colour.py at 22% and 13% on two seeds of
# three, against 94% and 93%.
AUTO_LR_LARGE = 0.01
AUTO_LR_SMALL = 5e-3
# Colour images on small data: half the small-data rate. The colour 8x8 digits of
# benchmarks/colour.py (random ink and paper colours) reached 92.74% over seeds 0-5 at 5e-3,
# one seed stuck at 82%, and 95.89% at 2.5e-3, every seed 94.4% or more; with twice the
# channels (channels="auto" on 8x8 images) 96.71% (BENCHMARKS.md). A network must learn to
# ignore the colours before it sees the digit, and the larger rate throws some off.
AUTO_LR_SMALL_COLOUR = 2.5e-3
AUTO_BETA_2_LARGE = 0.99
AUTO_BETA_2_SMALL = 0.999
# Temperature scaling searches between 1/MAX_TEMPERATURE and MAX_TEMPERATURE.
MAX_TEMPERATURE = 10.0
# The output layer's tensors in DigitCNN's state dict (and in each network's part of an
# ensemble's): the layer a warm start with new classes replaces.
OUTPUT_LAYER = ("head.4.weight", "head.4.bias")

#: Named sets of hyperparameters: ``CNNDigitClassifier(**PRESETS["accurate"])``. "fast" is the
#: defaults; "accurate" trains an ensemble of two deeper, full-resolution networks (four
#: stages, the last two of two convolutions each) with a wider dense layer and full-strength
#: augmentation for 14 epochs, in mixed bfloat16 precision where the CPU or GPU has
#: bfloat16 instructions, on every training image: nothing is held out, so there is no
#: early stopping and no temperature scaling unless ``fit`` is given ``X_val``. About 8-9
#: minutes on MNIST with 2 CPU cores that have bfloat16 instructions, see BENCHMARKS.md.
PRESETS = {
    "fast": {},
    "accurate": {
        "channels": (8, 16, 32, 64),
        "convs_per_stage": (1, 1, 2, 2),
        "hidden_units": 256,
        "stem": "full",
        "n_networks": 2,
        "augment": 1.0,
        "max_epochs": 14,
        "validation_fraction": 0.0,
        "precision": "auto",
        "warmup_fraction": 0.3,
        # Measured with these optimizer settings (BENCHMARKS.md), the defaults before
        # 2026-12-05; the defaults' larger rate and shorter memory suit their 6 epochs.
        "lr": 5e-3,
        "beta_2": 0.999,
    },
}


class CNNDigitClassifier(ClassifierMixin, BaseEstimator):
    """Convolutional neural network classifier for digit images.

    Trains a small batch-normalised CNN (see :class:`~skdigits._networks.DigitCNN`) with
    AdamW and a one-cycle learning-rate schedule through skorch. A stratified part of the
    training data is held out for early stopping, and the weights of the epoch with the
    lowest validation loss are restored at the end, as Keras' ``restore_best_weights`` does.

    The input may be flat rows of pixels ``(n_samples, height * width)``, images
    ``(n_samples, height, width)``, single-channel images ``(n_samples, 1, height, width)``
    or ``(n_samples, height, width, 1)``, colour images (RGB or RGBA) ``(n_samples, height,
    width, channels)`` or ``(n_samples, channels, height, width)``, or a DataFrame of pixel
    columns. The number of channels is learned in ``fit`` (``n_channels_``) and checked in
    ``predict``; colour given as flat rows needs ``image_shape``, the rows holding 3 or 4
    times its pixels, one channel plane after another. Any pixel scale
    works (uint8 0..255, floats 0..1, 0..16, -1..1): the range is learned in ``fit``, and
    data is converted to float32 one batch at a time, so uint8 data stays uint8 in memory.

    Parameters
    ----------
    channels : tuple of int or "auto", default="auto"
        Output channels of each convolutional stage; each stage after the first halves the
        image size, and so does the first when it is strided (see ``stem``). "auto" is
        (16, 16, 64), and twice as many, (32, 32, 128), where the wider network costs
        little: images under 12 pixels a side such as the 8x8 digits (99.62% -> 99.76%,
        5-fold, eight seeds), and fewer than 10,000 training images of 20 pixels a side or
        more (1,000 MNIST images: 98.43% -> 98.72%, six seeds).
        :meth:`partial_fit`, which does not know the data's size, follows the image size
        alone.
    convs_per_stage : int, tuple of int or "auto", default="auto"
        Convolutions in each stage: one int for every stage, or a tuple with one int per
        stage of ``channels``. The further convolutions of a stage are 3x3, keep its
        channels and come before its pooling: a deeper network, slower to train and predict.
        "auto" is two in the last stage but one and one in the others: (1, 2, 1) for the
        three stages of ``channels="auto"``, a second 16-channel convolution at 14x14 on
        MNIST.
    hidden_units : int, default=128
        Width of the dense layer between the convolutional stages and the output.
    dropout : float, default=0.1
        Dropout probability before the output layer.
    n_networks : int, default=1
        Number of networks of this design trained side by side, at most 16: a soft-voting
        ensemble in one estimator and one model file. Each network starts from its own
        random weights and sees its own augmentation of every batch; predictions average
        their probabilities (before temperature scaling, which then calibrates the
        average). Training and prediction take about ``n_networks`` times as long.
    augment : float or "auto", default="auto"
        Strength of random affine augmentation during training (rotation up to 12 degrees,
        scaling and shifts up to 10% at ``augment=1``; what moves in from outside the frame
        is the image's background); 0 turns it off. "auto" is 1 below 10,000 training
        images, where augmentation makes up for the missing data; above, 0.5 on images of
        20 pixels a side or more and 0 on smaller ones.
    stroke_augment : float or "auto", default="auto"
        Strength of random stroke-width changes during training, from 0 (none) to 1: each
        training image's strokes are made thinner or thicker, by blending its ink towards
        its 3x3 erosion or dilation (a pixel narrower or wider on each side) by a random
        fraction of up to ``stroke_augment``, for writers whose pens differ from those of
        the training set. "auto" is 0.5 below 10,000 training images of at least 16 pixels
        a side, and 0 otherwise: on large datasets the pens are already varied, and on
        smaller images a pixel is too much of a stroke.
    stem : {"auto", "strided", "full"}, default="auto"
        First convolution: "strided" is a 4x4 convolution of stride 2, which halves the image
        size at once, so the next stage works on a quarter of the pixels; "full" is a 3x3
        convolution at full resolution, slower and more accurate. "auto" is "strided" on
        images of 20 pixels a side or more (MNIST's 28x28) and "full" on smaller ones
        (16x16 scans, the 8x8 digits).
    image_shape : tuple of two int, default=None
        ``(height, width)`` of images given as flat rows. ``None`` infers a square shape;
        one side may be -1, as in ``numpy.reshape``. Must agree with image-shaped input.
    lr : float or "auto", default="auto"
        Peak learning rate of the one-cycle schedule. "auto" is 0.01 from 10,000 training
        images and 5e-3 below (5e-3 for all data before 2026-12-05), 2.5e-3 below for
        colour images: with ``beta_2="auto"`` the larger rate trains MNIST to the same
        accuracy in 6 epochs as 5e-3 did in 7, small data in small batches trains worse
        with it, and small colour data better with the smaller one (BENCHMARKS.md).
    warmup_fraction : float, default=0.15
        Fraction of the training steps over which the one-cycle schedule raises the
        learning rate to ``lr``; over the rest it anneals it to almost 0 (cosine). With
        0.3, the default of torch's ``OneCycleLR`` and what skdigits used before this
        parameter existed (the accuracy preset keeps it), the defaults reached 99% on
        MNIST about an epoch later.
    weight_decay : float, default=5e-4
        AdamW weight decay.
    beta_2 : float or "auto", default="auto"
        AdamW's decay rate of its running mean of the squared gradients, in [0, 1), as
        ``MLPClassifier``'s ``beta_2``. "auto" is 0.99 from 10,000 training images and
        torch's 0.999 below: with ``lr="auto"``, 0.99 raised 6 epochs on MNIST from 99.53% to
        99.55% and every seed of eight to 99.5% or more (BENCHMARKS.md). Model files written
        before this parameter existed were trained with 0.999. The decay rate of the mean
        of the gradients (``beta_1``) is the one-cycle schedule's: it falls from 0.95 to
        0.85 while the learning rate rises, and rises back while it falls.
    label_smoothing : float, default=0.1
        Label smoothing of the cross-entropy loss.
    batch_size : int or "auto", default="auto"
        Number of images per training step. "auto" takes ``n_train // 64`` clipped to
        16..256, so small datasets still get enough steps per epoch.
    max_epochs : int or "auto", default="auto"
        Number of passes over the training data; the learning-rate schedule spans them.
        "auto" is 6, or more on smaller datasets so that training takes at least 1,200
        optimizer steps, 1,600 below 10,000 training images (at most 100 epochs): with
        the default validation split, 1,000 images train for 29 epochs, MNIST for 6 (in
        batches of 1,024, for 23).
    patience : int or "auto", default="auto"
        Stop after this many epochs without improvement of the validation loss. "auto" is
        a quarter of the epochs, at least 5.
    validation_fraction : float, default=0.1
        Fraction of the training data held out, stratified, for early stopping. With 0, or
        too little data to give every class a sample on both sides, all data is used for
        training during ``max_epochs`` epochs.
    precision : {"float32", "bfloat16", "auto"}, default="auto"
        Arithmetic of training. "bfloat16" is mixed precision: the convolutions and dense
        layers run in bfloat16 (the weights, gradients and loss stay float32), which trains
        the default network about 1.2-1.4x faster and deeper ones up to 2x faster on CPUs with
        bfloat16 instructions (AVX512-BF16, AMX) and on recent GPUs, and markedly slower on
        other CPUs. "auto" is "bfloat16" where the device has such instructions and
        "float32" elsewhere (on CPUs, also with older torch versions such as 2.2, which
        cannot tell): the same seed can then train to slightly different weights on
        different machines, with the same accuracy within the spread of seeds. Prediction
        is always float32.
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
    warm_start : bool, default=False
        When True and the classifier is fitted (or loaded with :func:`skdigits.load`), the
        next ``fit`` starts from the current weights instead of new random ones, to
        fine-tune a model on new images. The images must have the fitted image shape; they
        are scaled by the fitted pixel range. If the classes differ, the output layer is
        replaced by a new one for the new classes and everything else is kept. The
        learning-rate schedule and early stopping start afresh over ``max_epochs``.
        :func:`skdigits.fine_tune` does this on a copy, with settings suited to it.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn: a dict ``{label: weight}``
        (missing labels weigh 1), or "balanced" for ``n_samples / (n_classes *
        np.bincount(y))``, which makes rare classes count as much as common ones.
        Multiplies ``sample_weight``.
    calibrate : bool, default=True
        Fit a temperature on the validation images after training (temperature scaling),
        so that ``predict_proba`` is calibrated: among images predicted with probability
        0.9, about 90% are right. Predictions do not change. Without validation data
        (``validation_fraction=0`` and no ``X_val``), the temperature stays 1, except on a
        warm start with the same classes, which keeps the fitted one.
    n_threads : int or None, default=None
        Number of torch threads for fit and predict, restored afterwards. None keeps
        torch's own choice, which in a joblib worker of a parallel search
        (``GridSearchCV(n_jobs=...)``) is the share of CPUs joblib grants it. Set it when
        other processes share the CPUs: see :doc:`/performance`.

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
    n_channels_ : int
        Channels of the training images: 1 (grey), 3 (RGB) or 4 (RGBA).
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
    channels_ : tuple of int
        The channels of the stages the network was built with (``channels`` resolved).
    stem_ : {"strided", "full"}
        The first convolution the network was built with (``stem`` resolved).
    temperature_ : float
        Temperature the logits are divided by before the softmax (see ``calibrate``); 1
        without calibration.

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
        "channels": [tuple, list, StrOptions({"auto"})],
        "convs_per_stage": [
            Interval(Integral, 1, None, closed="left"),
            tuple,
            list,
            StrOptions({"auto"}),
        ],
        "hidden_units": [Interval(Integral, 1, MAX_HIDDEN_UNITS, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "n_networks": [Interval(Integral, 1, MAX_NETWORKS, closed="both")],
        "augment": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "stroke_augment": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
        "stem": [StrOptions({"auto", "strided", "full"})],
        "image_shape": [tuple, list, None],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "warmup_fraction": [Interval(Real, 0, 1, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "patience": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "precision": [StrOptions({"float32", "bfloat16", "auto"})],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "warm_start": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "calibrate": ["boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        channels="auto",
        convs_per_stage="auto",
        hidden_units=128,
        dropout=0.1,
        n_networks=1,
        augment="auto",
        stroke_augment="auto",
        stem="auto",
        image_shape=None,
        lr="auto",
        warmup_fraction=0.15,
        weight_decay=5e-4,
        beta_2="auto",
        label_smoothing=0.1,
        batch_size="auto",
        max_epochs="auto",
        patience="auto",
        validation_fraction=0.1,
        precision="auto",
        device="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
        warm_start=False,
        class_weight=None,
        calibrate=True,
        n_threads=None,
    ):
        self.channels = channels
        self.convs_per_stage = convs_per_stage
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.n_networks = n_networks
        self.augment = augment
        self.stroke_augment = stroke_augment
        self.stem = stem
        self.image_shape = image_shape
        self.lr = lr
        self.warmup_fraction = warmup_fraction
        self.weight_decay = weight_decay
        self.beta_2 = beta_2
        self.label_smoothing = label_smoothing
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.class_weight = class_weight
        self.calibrate = calibrate
        self.n_threads = n_threads

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Training images.
        y : array-like of shape (n_samples,)
            Class labels: ints, strings or bools.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each image in the training loss (and in the validation loss, for the
            images held out); 0 removes an image's influence. Multiplied by the weights
            ``class_weight`` gives. None weighs every image the same.
        X_val : array-like of images, default=None
            Images to stop early on, instead of holding out ``validation_fraction`` of
            ``X``; all of ``X`` is then trained on. Requires ``y_val``. In a pipeline, route
            them with ``set_fit_request(X_val=True, y_val=True)`` and
            ``Pipeline(..., transform_input=["X_val"])`` so earlier steps transform them.
        y_val : array-like of shape (n_val,), default=None
            Labels of ``X_val``, among those of ``y``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of ``X_val`` in the validation loss.

        Returns
        -------
        self : CNNDigitClassifier
            The fitted classifier.
        """
        with torch_threads(self.n_threads), _unchanged_on_error(self):
            return self._fit(X, y, sample_weight, X_val, y_val, sample_weight_val)

    def _fit(self, X, y, sample_weight, X_val, y_val, sample_weight_val):
        self._check_network()
        device = _resolve_device(self.device)
        previous = self.net_ if self.warm_start and hasattr(self, "net_") else None
        # What a warm start without validation data keeps, if the classes stay the same.
        kept_classes, kept_temperature = (
            (self.classes_, self.temperature_) if previous is not None else (None, 1.0)
        )
        if previous is None:
            X, y = validate_images(self, X, y, reset=True)
        else:
            # Fine-tuning: the network expects the image shape and pixel scale it learned.
            X, y = validate_images(self, X, y, reset=False)
        check_classification_targets(y)
        classes, y = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, but the data "
                f"contains only one class: {classes[0]!r}"
            )
        weight = self._weights(sample_weight, X, y, classes)
        if previous is None:
            self.pixel_range_ = pixel_range(X)
            self.stem_ = resolve_stem(self.stem, self.image_shape_)
        else:
            # Fine-tuning keeps the fitted network's channels and stem unless others are
            # asked for (which _start_from then refuses).
            if self.channels != "auto":
                self.channels_ = check_channels(self.channels)
            if self.stem != "auto":
                self.stem_ = self.stem
        rng = check_random_state(self.random_state)
        self.classes_ = classes
        if X_val is not None or y_val is not None:
            train = np.arange(len(y))
            X_valid, y_valid, weight_valid = self._validation_data(X_val, y_val, sample_weight_val)
        else:
            train, valid = self._split(y, rng)
            X_valid, y_valid = (None, None) if valid is None else (X[valid], y[valid])
            weight_valid = None if valid is None or weight is None else weight[valid]
        validate = X_valid is not None

        schedule = self._schedule(len(train))
        if previous is None:
            small_data = len(train) < AUGMENT_BELOW
            self.channels_ = resolve_channels(self.channels, self.image_shape_, small_data)
        net = self._new_net(
            device,
            schedule,
            max_epochs=schedule.epochs,
            iterator_train__shuffle=True,
            train_split=(
                predefined_split(Dataset(_with_weights(X_valid, weight_valid), y_valid))
                if validate
                else None
            ),
            callbacks=self._callbacks(len(train), schedule, validate),
        )
        train_weight = None if weight is None else weight[train]
        with torch.random.fork_rng(devices=_cuda_devices(device)):
            # A private RNG stream: fitting never disturbs the user's global torch seed.
            torch.manual_seed(rng.randint(2**31))
            if previous is not None:
                _start_from(net, previous)
            net.fit(_with_weights(X[train], train_weight), y[train])
        self._warn_if_interrupted(net, schedule.epochs)
        self.net_ = net
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        stopping = dict(net.callbacks_).get("early_stopping")
        # The epoch whose weights early stopping restored; the last one without validation.
        self.best_epoch_ = stopping.best_epoch_ if stopping is not None else self.n_iter_
        self.temperature_ = 1.0
        if validate:
            if self.calibrate:
                self.temperature_ = _fit_temperature(self._logits(X_valid), y_valid, weight_valid)
            self._warn_if_not_learned(y_valid, len(train))
        elif previous is not None and self.calibrate and np.array_equal(kept_classes, classes):
            # Nothing to calibrate on: the network keeps its output layer and the loss its
            # label smoothing, so the fitted temperature still suits it (on 200 and 500 of
            # the 8x8 digits fine-tuned from the bundled model, a log loss of 0.020 and 0.012
            # against 0.12 and 0.11 with 1; BENCHMARKS.md).
            self.temperature_ = kept_temperature
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train the network for one pass over ``X``, starting from its current weights.

        For data that arrives in parts or does not fit in memory, as with
        :meth:`sklearn.neural_network.MLPClassifier.partial_fit`. Each call is one epoch at
        the constant learning rate ``lr`` (no one-cycle schedule: the number of calls is
        unknown; "auto" is then 5e-3 with ``beta_2=0.999``, the values of small data in
        ``fit``), with no validation split, early stopping or calibration
        (``temperature_`` stays 1). The optimizer's state carries over between calls. After
        :meth:`fit`, or on a model from :func:`skdigits.load`, the first call starts from
        the fitted weights with a fresh optimizer.

        Parameters
        ----------
        X : array-like of images
            Training images, of the fitted image shape after the first call.
        y : array-like of shape (n_samples,)
            Class labels, each among ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every class label of the whole training data. Required on the first call of an
            unfitted classifier, where ``y`` may lack some classes; later it may be omitted,
            or must equal ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each image in the training loss.

        Returns
        -------
        self : CNNDigitClassifier
            The classifier, trained one more epoch.
        """
        with torch_threads(self.n_threads), _unchanged_on_error(self):
            return self._partial_fit(X, y, classes, sample_weight)

    def _partial_fit(self, X, y, classes, sample_weight):
        self._check_network()
        device = _resolve_device(self.device)
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit: every label of the "
                "whole training data, as the first part may lack some"
            )
        X, y = validate_images(self, X, y, reset=first)
        check_classification_targets(y)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(f"classes must hold at least 2 labels; got {classes!r}")
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes!r} differs from the classes_ {self.classes_!r} of the "
                    "first call; pass the same classes, or none after the first call"
                )
        known = classes if first else self.classes_
        unknown = np.setdiff1d(y, known)
        if len(unknown):
            raise ValueError(
                f"y holds labels {unknown[:5].tolist()} outside classes {known.tolist()[:20]}; "
                "every label must be among the classes given on the first call"
            )
        y = np.searchsorted(known, y)
        weight = self._weights(sample_weight, X, y, known)
        if first:
            self.pixel_range_ = pixel_range(X)
            # The whole data's size is unknown here: "auto" channels follow the image size.
            self.channels_ = resolve_channels(self.channels, self.image_shape_)
            self.stem_ = resolve_stem(self.stem, self.image_shape_)
            self.classes_ = known
        rng = check_random_state(self.random_state)
        previous = getattr(self, "net_", None)
        if previous is not None and not previous.predict_only and not _is_scheduled(previous):
            net = previous
        else:
            schedule = self._schedule(len(y), one_cycle=False)
            net = self._new_net(
                device,
                schedule,
                iterator_train__shuffle=True,
                train_split=None,
                callbacks=list(self.callbacks or []),
            )
        with torch.random.fork_rng(devices=_cuda_devices(device)):
            # A new seed per call, so that successive epochs shuffle differently.
            torch.manual_seed(rng.randint(2**31) + getattr(self, "n_iter_", 0))
            if net is not previous:
                if previous is None:
                    net.initialize()
                else:
                    _start_from(net, previous)
            net.partial_fit(_with_weights(X, weight), y, epochs=1)
        self.net_ = net
        self.history_ = net.history
        self.n_iter_ = self.best_epoch_ = len(net.history)
        self.temperature_ = 1.0
        return self

    def _weights(self, sample_weight, X, y, classes):
        """Return each image's loss weight, mean 1, or None when all weigh the same.

        ``y`` holds class indices into ``classes``.
        """
        if sample_weight is None and self.class_weight is None:
            return None
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is not None:
            weight = weight * compute_sample_weight(self.class_weight, classes[y])
        if not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
            raise ValueError(
                "sample_weight must be finite and non-negative, with a positive sum; got "
                f"weights from {weight.min()} to {weight.max()}"
            )
        # Mean 1: the loss keeps its scale, so the learning rate means what it did.
        return (weight / weight.mean()).astype(np.float32)

    def _validation_data(self, X_val, y_val, sample_weight_val):
        """Return ``X_val``, its labels as class indices and its weights, validated."""
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together")
        X_val, y_val = validate_images(self, X_val, y_val, reset=False)
        unknown = np.setdiff1d(y_val, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y_val holds labels {unknown[:5].tolist()} that y lacks; the validation "
                "labels must be among the training classes"
            )
        y_val = np.searchsorted(self.classes_, y_val)
        weight = None
        if sample_weight_val is not None:
            weight = _check_sample_weight(sample_weight_val, X_val, dtype=np.float64)
            if not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
                raise ValueError(
                    "sample_weight_val must be finite and non-negative, with a positive sum"
                )
            weight = (weight / weight.mean()).astype(np.float32)
        return X_val, y_val, weight

    def _logits(self, X):
        """Return the network's logits for validated images ``X``, in float64."""
        blocks = [logits.double() for logits in self.net_.forward_iter(X, training=False)]
        return torch.cat(blocks).numpy() if blocks else np.empty((0, len(self.classes_)))

    def _schedule(self, n_train, one_cycle=True):
        """Return the _Schedule of ``n_train`` training images, "auto" resolved.

        Small datasets get smaller batches, more epochs (at least ``MIN_AUTO_STEPS``
        optimizer steps, ``MIN_AUTO_STEPS_SMALL`` below ``AUGMENT_BELOW`` images),
        augmentation and a smaller learning rate: with the settings that suit MNIST, a few
        hundred images get a few dozen steps and the network never leaves its initial guess.
        Without the one-cycle schedule to anneal it (``partial_fit``), the learning rate and
        ``beta_2`` are the small-data ones at every size.
        """
        large = n_train >= AUGMENT_BELOW
        large_rates = large and one_cycle
        batch_size = self.batch_size
        if batch_size == "auto":
            batch_size = min(256, max(16, n_train // 64))
        epochs = self.max_epochs
        if epochs == "auto":
            steps = len(BatchIterator(range(n_train), batch_size, shuffle=True))
            min_steps = MIN_AUTO_STEPS if large else MIN_AUTO_STEPS_SMALL
            epochs = min(MAX_AUTO_EPOCHS, max(AUTO_EPOCHS, math.ceil(min_steps / steps)))
        patience = max(5, epochs // 4) if self.patience == "auto" else self.patience
        augment = self.augment
        if augment == "auto":
            if not large:
                augment = AUTO_AUGMENT_SMALL
            elif min(self.image_shape_) >= AUGMENT_MIN_SIZE:
                augment = AUTO_AUGMENT_LARGE
            else:
                augment = 0.0
        stroke = self.stroke_augment
        if stroke == "auto":
            small = not large and min(self.image_shape_) >= STROKE_MIN_SIZE
            stroke = AUTO_STROKE if small else 0.0
        lr = self.lr
        if lr == "auto":
            if large_rates:
                lr = AUTO_LR_LARGE
            else:
                lr = AUTO_LR_SMALL_COLOUR if self.n_channels_ > 1 else AUTO_LR_SMALL
        beta_2 = self.beta_2
        if beta_2 == "auto":
            beta_2 = AUTO_BETA_2_LARGE if large_rates else AUTO_BETA_2_SMALL
        return _Schedule(batch_size, epochs, patience, augment, stroke, lr, beta_2)

    def _warn_if_not_learned(self, y_valid, n_train):
        """Warn when the kept epoch predicts held-out images no better than a constant would."""
        accuracy = self.history_[self.best_epoch_ - 1]["valid_acc"]
        constant = np.bincount(y_valid).max() / len(y_valid)
        if accuracy <= constant:
            warnings.warn(
                f"the classifier did not learn: its held-out accuracy ({accuracy:.3f}) is no "
                f"better than always predicting the most common class ({constant:.3f}). "
                f"{n_train} training images may be too few to learn from; add images, or "
                "fine-tune a pretrained model (skdigits.fine_tune)",
                UserWarning,
                stacklevel=5,
            )

    def _warn_if_interrupted(self, net, epochs):
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
        if len(history) < epochs and not stopped_early:
            warnings.warn(
                f"training was interrupted after {len(history)} of {epochs} epochs; "
                "the classifier keeps the best weights seen so far",
                UserWarning,
                stacklevel=5,
            )

    def _new_net(self, device, schedule=None, max_epochs=1, **kwargs):
        """Return an unfitted skorch net for the fitted image shape, classes and pixel range.

        Without a ``schedule`` (a _Schedule), the net only predicts: it gets no optimizer
        (see DigitNet), so none of its settings either, as skorch rejects settings of a
        component it does not have.
        """
        predict_only = schedule is None
        augment = stroke = 0.0
        if not predict_only:
            augment, stroke = schedule.augment, schedule.stroke
            kwargs["lr"] = schedule.lr
            kwargs["batch_size"] = schedule.batch_size
            kwargs["optimizer__weight_decay"] = self.weight_decay
            # The first decay rate is the one-cycle schedule's (cycle_momentum).
            kwargs["optimizer__betas"] = (0.9, schedule.beta_2)
            kwargs["training_dtype"] = _training_dtype(self.precision, device)
        if self.n_networks > 1:
            # One network keeps DigitCNN itself, and its model files their tensor names.
            kwargs["module__n_networks"] = self.n_networks
        return DigitNet(
            module=DigitEnsemble if self.n_networks > 1 else DigitCNN,
            module__image_shape=self.image_shape_,
            module__n_classes=len(self.classes_),
            module__channels=self.channels_,
            module__convs_per_stage=self.convs_per_stage,
            module__hidden_units=self.hidden_units,
            module__dropout=self.dropout,
            module__augment=augment,
            module__stroke=stroke,
            module__stem=self.stem_,
            module__pixel_low=self.pixel_range_[0],
            module__pixel_span=self.pixel_range_[1],
            module__in_channels=self.n_channels_,
            criterion=torch.nn.CrossEntropyLoss,
            criterion__label_smoothing=self.label_smoothing,
            # DigitNet weighs each image's loss, then averages.
            criterion__reduction="none",
            optimizer=AdamW,
            max_epochs=max_epochs,
            iterator_train=BatchIterator,
            iterator_train__device=device,
            iterator_valid=BatchIterator,
            iterator_valid__device=device,
            # Batches of a few hundred images keep activations in the CPU caches when
            # predicting; larger ones run markedly slower.
            iterator_valid__batch_size=256,
            device=device,
            verbose=self.verbose,
            predict_only=predict_only,
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

    def _callbacks(self, n_train, schedule, validate):
        """Return the skorch callbacks: the learning-rate schedule and early stopping."""
        steps_per_epoch = len(BatchIterator(range(n_train), schedule.batch_size, shuffle=True))
        one_cycle = LRScheduler(
            policy=torch.optim.lr_scheduler.OneCycleLR,
            max_lr=schedule.lr,
            total_steps=schedule.epochs * steps_per_epoch,
            pct_start=self.warmup_fraction,
            step_every="batch",
        )
        callbacks = [("lr_schedule", one_cycle)]
        if validate:
            # threshold=0: any improvement counts, as in the history's valid_loss_best.
            stopping = EarlyStopping(
                monitor="valid_loss", patience=schedule.patience, threshold=0, load_best=True
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
        # in proportion to the number of images. The softmax runs in float64, so rows sum
        # to 1 within 1e-15.
        proba = np.empty((len(X), len(self.classes_)))
        start = 0
        with torch_threads(self.n_threads):
            for logits in self.net_.forward_iter(X, training=False):
                stop = start + len(logits)
                proba[start:stop] = softmax(logits.double().numpy() / self.temperature_, axis=1)
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

        The same file as ``skdigits.save(self, path)``: the network weights and everything
        else as JSON in one safetensors file, written to a temporary file and renamed, so an
        existing file is never left half-written. Read it back with :func:`skdigits.load`,
        which never runs code from the file, unlike pickle.

        Parameters
        ----------
        path : str or path-like
            Where to write the model file; through a symbolic link, its target is written.

        Returns
        -------
        self : CNNDigitClassifier
            The classifier, unchanged.
        """
        write_model_file(path, *self.to_state())
        return self

    def to_state(self):
        """Return the fitted classifier as plain data: its weights and a JSON-able dict.

        What a model file stores, for other stores too; :meth:`from_state` rebuilds the
        classifier from it. Parameters that hold objects (a ``RandomState`` as
        ``random_state``, ``callbacks``) are stored as None: the fitted weights no longer
        depend on them, and a refit of the rebuilt classifier draws fresh seeds.

        Returns
        -------
        tensors : dict of str to torch.Tensor
            The network's state dict, on the CPU.
        state : dict
            ``{"params": ..., "attributes": ...}``: the hyperparameters and every fitted
            attribute but the network, as plain JSON data (lists, dicts, str, numbers).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skdigits import CNNDigitClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0)
        >>> tensors, state = clf.fit(X[:300], y[:300]).to_state()
        >>> state["attributes"]["image_shape_"]
        [8, 8]
        >>> copy = CNNDigitClassifier.from_state(tensors, state, device="auto")  # as clf
        >>> bool((copy.predict_proba(X) == clf.predict_proba(X)).all())
        True
        """
        check_is_fitted(self)
        params = self.get_params()
        if isinstance(params["random_state"], np.random.RandomState):
            params["random_state"] = None
        if params["callbacks"]:
            params["callbacks"] = None
        attributes = {
            name: write(getattr(self, name))
            for name, (write, _) in _ATTRIBUTES.items()
            if hasattr(self, name)
        }
        tensors = {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self.net_.module_.state_dict().items()
        }
        return tensors, to_plain({"params": params, "attributes": attributes})

    @classmethod
    def from_state(cls, tensors, state, device="cpu"):
        """Return the fitted classifier that :meth:`to_state` gave as plain data.

        Nothing is trusted: every parameter and attribute is checked for type and range,
        sizes are bounded (see docs/persistence.md), and the tensors must be exactly those
        of the network the parameters describe, finite and of its dtypes, before the network
        is built.

        Parameters
        ----------
        tensors : dict of str to torch.Tensor
            The network's weights.
        state : dict
            The hyperparameters and fitted attributes, as JSON gives them back.
        device : str, default="cpu"
            Torch device to predict on: "cpu", "cuda", "cuda:N" or "auto". The ``device``
            hyperparameter keeps its stored value, for refits.

        Returns
        -------
        clf : CNNDigitClassifier
            The fitted classifier.

        Raises
        ------
        ValueError
            If a field is missing, of the wrong type or out of range, or the tensors do not
            fit the network; the message names the field.
        """
        device = _resolve_device(device)
        checks = {
            "channels": (
                lambda value: is_list(value) or value == "auto",
                "'auto' or a list of ints",
            ),
            "convs_per_stage": (
                lambda value: is_list(value) or isinstance(value, int) or value == "auto",
                "'auto', an int or a list of ints",
            ),
            "image_shape": (lambda value: value is None or is_list(value), "null or a list"),
        }
        stored = field(state, "params", is_dict, "an object")
        # Files written before these parameters existed were trained as their value here
        # describes, not as today's defaults would.
        clf = cls(**{**_LEGACY_PARAMS, **params_from_state(cls, stored, checks)})
        clf._validate_params()
        if clf.channels != "auto":
            checked("channels", check_channels, clf.channels)
        attributes = field(state, "attributes", is_dict, "an object")
        for name, (_, read) in _ATTRIBUTES.items():
            if name in attributes or name not in _OPTIONAL_ATTRIBUTES:
                value = field(attributes, name, lambda _: True, "")
                setattr(clf, name, checked(name, read, value))
            elif _OPTIONAL_ATTRIBUTES[name] is not None:
                setattr(clf, name, _OPTIONAL_ATTRIBUTES[name])
        if not hasattr(clf, "channels_"):
            # Written before channels could be "auto": the parameter is the network's.
            if clf.channels == "auto":
                raise ValueError("its description lacks 'channels_'")
            clf.channels_ = check_channels(clf.channels)
        if not hasattr(clf, "stem_"):
            # Written before the stem was stored: "auto" meant the rule of that time.
            clf.stem_ = resolve_stem(clf.stem, clf.image_shape_, LEGACY_STRIDED_STEM_MIN_SIZE)
        clf._check_attributes_agree()
        clf.net_ = clf._restore_net(tensors, device)
        return clf

    def _check_network(self):
        """Raise a ValueError unless channels and convs_per_stage describe a network."""
        auto = isinstance(self.channels, str)  # "auto", as _validate_params checked
        n_stages = AUTO_STAGES if auto else len(check_channels(self.channels))
        check_convs_per_stage(self.convs_per_stage, n_stages)

    def _check_attributes_agree(self):
        """Raise a ValueError unless the restored attributes describe one consistent model."""
        height, width = self.image_shape_
        if self.n_channels_ * height * width != self.n_features_in_:
            raise ValueError(
                f"'image_shape_' {self.image_shape_} of {self.n_channels_} channels does not "
                f"hold 'n_features_in_' {self.n_features_in_} pixels"
            )
        if self.image_shape is not None:
            requested = checked(
                "image_shape",
                lambda shape: infer_image_shape(self.n_features_in_ // self.n_channels_, shape),
                self.image_shape,
            )
            if requested != self.image_shape_:
                raise ValueError(
                    f"'image_shape' {self.image_shape} disagrees with 'image_shape_' "
                    f"{self.image_shape_}"
                )
        if self.channels != "auto" and check_channels(self.channels) != self.channels_:
            raise ValueError(
                f"'channels_' {list(self.channels_)} disagrees with 'channels' "
                f"{list(self.channels)}"
            )
        checked(
            "convs_per_stage",
            lambda value: check_convs_per_stage(value, len(self.channels_)),
            self.convs_per_stage,
        )
        if self.stem not in ("auto", self.stem_):
            raise ValueError(f"'stem_' {self.stem_!r} disagrees with 'stem' {self.stem!r}")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and len(names) != self.n_features_in_:
            raise ValueError(
                f"'feature_names_in_' names {len(names)} features, not 'n_features_in_' "
                f"{self.n_features_in_}"
            )
        if not (self.best_epoch_ <= self.n_iter_ == len(self.history_)):
            raise ValueError(
                f"'best_epoch_' {self.best_epoch_}, 'n_iter_' {self.n_iter_} and the "
                f"{len(self.history_)} epochs of 'history_' disagree"
            )

    def _restore_net(self, tensors, device):
        """Return the skorch net on ``device`` holding ``tensors``, once they are checked."""
        net = self._new_net(device)
        _check_weights(net, tensors, self.pixel_range_)
        # Random initial weights are overwritten at once; drawing them must not move the
        # user's global torch seed.
        with torch.random.fork_rng(devices=[]):
            net.initialize()
        net.module_.load_state_dict(tensors)
        # skorch switches to eval mode for each prediction; a loaded model is ready for one.
        net.module_.eval()
        net.history = self.history_
        return net


class _Schedule(NamedTuple):
    """How a fit trains, with every "auto" parameter resolved for its data."""

    batch_size: int
    epochs: int
    patience: int
    augment: float
    stroke: float
    lr: float
    beta_2: float


def _is_positive_finite(value):
    return is_number(value) and math.isfinite(value) and value > 0


def _pixel_range_from_state(value):
    """Return a stored pixel range: a finite low and a finite positive span."""
    if not (is_list(value) and len(value) == 2 and all(map(is_number, value))):
        raise ValueError(f"should be a list of two numbers; got {value!r:.80}")
    low, span = (float(number) for number in value)
    if not (math.isfinite(low) and math.isfinite(span) and span > 0):
        raise ValueError(f"should be a finite low and a finite positive span; got {value!r:.80}")
    return low, span


def _require(is_valid, expected, convert=None):
    """Return a reader that checks a stored value with ``is_valid``, then converts it."""

    def read(value):
        if not is_valid(value):
            raise ValueError(f"should be {expected}; got {value!r:.80}")
        return value if convert is None else convert(value)

    return read


# The values of parameters added after skdigits 0.1 before they existed, for model files
# that don't store them: their network and training were what these values describe.
_LEGACY_PARAMS = {
    "convs_per_stage": 1,
    "precision": "float32",
    "warmup_fraction": 0.3,
    "beta_2": 0.999,
}

# The fitted attributes besides the network, in one place: how each is written as JSON, and
# how it is read back (checked, then converted to the type the classifier keeps).
_ATTRIBUTES = {
    "classes_": (classes_to_state, classes_from_state),
    "n_features_in_": (int, _require(is_positive_int, "a positive int")),
    "feature_names_in_": (
        np.ndarray.tolist,
        _require(is_list_of_strings, "a list of strings", lambda v: np.asarray(v, dtype=object)),
    ),
    "image_shape_": (list, lambda value: check_image_shape(value, name="image_shape_")),
    "pixel_range_": (list, _pixel_range_from_state),
    "best_epoch_": (int, _require(is_count, "a non-negative int")),
    "n_iter_": (int, _require(is_count, "a non-negative int")),
    "history_": (list, lambda value: History(history_from_state(value))),
    "n_channels_": (int, _require(lambda c: c in (1, *COLOUR_CHANNELS), "1, 3 or 4")),
    "temperature_": (float, _require(_is_positive_finite, "a positive finite number", float)),
    "stem_": (str, _require(lambda stem: stem in ("strided", "full"), '"strided" or "full"')),
    "channels_": (list, check_channels),
}
# Attributes a model may lack, and their value then: feature names come with DataFrames;
# files written by skdigits 0.1 hold grey models without calibration, and no resolved stem
# (from_state resolves it by the rule of that version).
_OPTIONAL_ATTRIBUTES = {
    "feature_names_in_": None,
    "temperature_": 1.0,
    "n_channels_": 1,
    "stem_": None,
    "channels_": None,
}


def _check_weights(net, tensors, pixel_range):
    """Raise a ValueError unless ``tensors`` are exactly the weights of ``net``'s network.

    Names, shapes and dtypes must match, floating-point weights must be finite, batch-norm
    variances non-negative, and the stored pixel scaling must be the fitted pixel range.
    """
    # On the meta device the network has shapes but no memory, so this costs nothing even
    # for the largest network the bounds allow.
    try:
        with torch.device("meta"):
            module = net.module(**net.get_params_for("module"))
    except RuntimeError as error:
        raise ValueError(
            f"its parameters describe a network that cannot be built: {error}"
        ) from None
    expected = {name: (tuple(t.shape), t.dtype) for name, t in module.state_dict().items()}
    found = {name: (tuple(t.shape), t.dtype) for name, t in tensors.items()}
    differing = sorted(
        name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name)
    )
    if differing:
        raise ValueError(
            f"its weights do not fit the network its parameters describe (tensors "
            f"{differing[:5]} are missing, extra, or of another shape or dtype)"
        )
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"tensor {name!r} holds NaN or infinite weights")
        if name.endswith("running_var") and (tensor < 0).any():
            raise ValueError(f"tensor {name!r} holds negative variances")
    expected = tuple(float(np.float32(v)) for v in pixel_range)
    for low in (name for name in tensors if name.endswith("pixel_low")):
        span = low.removesuffix("low") + "span"  # in each network of an ensemble
        stored = (tensors[low].item(), tensors[span].item())
        if stored != expected:
            raise ValueError(
                f"tensors {low!r} and {span!r} {stored} differ from 'pixel_range_' "
                f"{tuple(pixel_range)}"
            )


def _with_weights(X, weight):
    """Return ``X`` as the net's input: the images, with their loss weights if any."""
    return X if weight is None else {"X": X, "sample_weight": weight}


def _is_scheduled(net):
    """Return whether ``net`` trains under fit's one-cycle schedule (not for partial_fit)."""
    return "lr_schedule" in dict(net.callbacks_)


def _fit_temperature(logits, y, weight=None):
    """Return the temperature that minimises the (weighted) log loss of ``logits``.

    Temperature scaling (Guo et al., 2017): dividing the logits by one number fitted on
    held-out images calibrates the probabilities without changing any prediction. Label
    smoothing, which regularises training, leaves the network underconfident; this undoes
    that. Searched on a log scale between 1/10 and 10: when every validation image is
    right, the log loss keeps falling as the temperature does, and the bound keeps the
    probabilities from becoming certainties on so little evidence.
    """

    def log_loss(log_temperature):
        scaled = logits / np.exp(log_temperature)
        losses = logsumexp(scaled, axis=1) - scaled[np.arange(len(y)), y]
        return np.average(losses, weights=weight)

    bound = np.log(MAX_TEMPERATURE)
    best = minimize_scalar(log_loss, bounds=(-bound, bound), method="bounded")
    return float(np.exp(best.x))


@contextlib.contextmanager
def _unchanged_on_error(estimator):
    """Put back the attributes ``estimator`` had when the block raises.

    A fit that is refused or fails (a warm start onto another network, bad validation data,
    an error while training) then leaves a fitted classifier as it was: its attributes keep
    describing its network, so it still predicts, and the model file it saves still loads.
    """
    before = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(before)
        raise


def _start_from(net, previous):
    """Initialize ``net`` with the weights of the fitted net ``previous``, for warm starts.

    Every tensor is copied except those of the output layer when the number of classes
    changed: that layer keeps its fresh random weights.
    """
    net.initialize()
    new, old = net.module_.state_dict(), previous.module_.state_dict()
    output = {name for name in new if name.endswith(OUTPUT_LAYER)}
    differing = {name for name in new if name not in old or old[name].shape != new[name].shape}
    if differing - output or old.keys() - new.keys():
        raise ValueError(
            "warm_start=True needs the network the classifier was fitted with; channels, "
            "convs_per_stage, hidden_units, n_networks or stem changed. Set them back, or set "
            "warm_start=False to train a new network"
        )
    net.module_.load_state_dict({k: v for k, v in old.items() if k not in differing}, strict=False)
    # skorch re-initializes the module in fit unless told to continue.
    net.set_params(warm_start=True)


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


def _training_dtype(precision, device):
    """Return the dtype to autocast training to on ``device``, or None for float32."""
    if precision == "float32":
        return None
    if precision == "auto" and not _has_bfloat16_instructions(torch.device(device)):
        return None
    return torch.bfloat16


def _has_bfloat16_instructions(device):
    """Return whether ``device`` computes in bfloat16 natively (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own check of the CPU's AVX512-BF16 instructions (AMX implies them); private,
    # and missing from older torch (2.2), so its absence counts as no.
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return device.type == "cpu" and check is not None and bool(check())


def _cuda_devices(device):
    """Return the CUDA devices whose random state fitting on ``device`` may change."""
    return [torch.device(device)] if torch.device(device).type == "cuda" else []
