"""Plots of a fitted classifier: learning curves, confusion matrix, misclassified images.

These functions need matplotlib, an optional dependency: ``pip install skdigits[plot]``.
Each returns the figure (or scikit-learn's display object) so that it can be changed
further, and saves it to ``path`` when one is given.
"""

import math

import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_confusion_matrix", "plot_learning_curves", "plot_misclassified"]


def plot_learning_curves(clf, ax=None, path=None):
    """Return a figure of the loss and validation accuracy per epoch of a fitted classifier.

    The training and validation losses share the left axis, the validation accuracy has
    its own axis on the right, and a dashed vertical line marks ``best_epoch_``, the epoch
    whose weights the classifier kept. A classifier fitted without validation
    (``validation_fraction=0``) shows its training loss only.

    Parameters
    ----------
    clf : CNNDigitClassifier
        A fitted classifier; its ``history_`` holds the values per epoch.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw the losses on; ``None`` creates a new figure.
    path : str or path-like, default=None
        If given, the figure is also saved there, as PNG unless the name says otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the plot.

    See Also
    --------
    plot_confusion_matrix : Which digits are confused with which.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdigits import CNNDigitClassifier
    >>> from skdigits.plotting import plot_learning_curves
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNDigitClassifier(channels=(4, 8), max_epochs=3, random_state=0).fit(X, y)
    >>> fig = plot_learning_curves(clf)
    >>> [line.get_label() for line in fig.axes[0].get_lines()][:2]
    ['training loss', 'validation loss']
    """
    check_is_fitted(clf, "history_")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    else:
        fig = ax.figure
    history = clf.history_
    epochs = history[:, "epoch"]
    ax.plot(epochs, history[:, "train_loss"], marker="o", label="training loss")
    validated = all("valid_loss" in row for row in history)
    if validated:
        ax.plot(epochs, history[:, "valid_loss"], marker="o", label="validation loss")
    ax.axvline(
        clf.best_epoch_, color="gray", linestyle="--", label=f"best epoch ({clf.best_epoch_})"
    )
    ax.set(xlabel="epoch", ylabel="loss", title="Learning curves")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lines = list(ax.get_lines())
    legend_ax = ax
    if validated:
        legend_ax = ax.twinx()
        legend_ax.plot(
            epochs, history[:, "valid_acc"], color="C2", marker="s", label="validation accuracy"
        )
        legend_ax.set_ylabel("validation accuracy")
        lines += legend_ax.get_lines()
    # One legend for both axes, drawn on the top one so that no curve hides it.
    legend_ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    _save(fig, path)
    return fig


def plot_confusion_matrix(clf, X, y, path=None, **kwargs):
    """Return scikit-learn's confusion-matrix display of ``clf`` on the images ``X``.

    The title gives the accuracy and the number of images.

    Parameters
    ----------
    clf : fitted classifier
        Any fitted scikit-learn classifier, such as :class:`~skdigits.CNNDigitClassifier`.
    X : array-like of shape (n_samples, n_pixels) or (n_samples, height, width)
        Images to predict.
    y : array-like of shape (n_samples,)
        Their true labels.
    path : str or path-like, default=None
        If given, the figure is also saved there, as PNG unless the name says otherwise.
    **kwargs : dict
        Passed to :meth:`sklearn.metrics.ConfusionMatrixDisplay.from_predictions`, for
        example ``normalize="true"``, ``ax`` or ``cmap``.

    Returns
    -------
    display : sklearn.metrics.ConfusionMatrixDisplay
        The display; ``display.figure_`` is the figure, ``display.ax_`` its axes.

    See Also
    --------
    plot_misclassified : The images behind the off-diagonal cells.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdigits import CNNDigitClassifier
    >>> from skdigits.plotting import plot_confusion_matrix
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNDigitClassifier(channels=(4, 8), max_epochs=3, random_state=0).fit(X, y)
    >>> display = plot_confusion_matrix(clf, X, y)
    >>> display.confusion_matrix.shape
    (10, 10)
    """
    _pyplot()
    y_pred = clf.predict(X)
    kwargs.setdefault("cmap", "Blues")
    display = ConfusionMatrixDisplay.from_predictions(y, y_pred, **kwargs)
    display.ax_.set_title(f"Accuracy {accuracy_score(y, y_pred):.1%} on {len(y_pred)} images")
    _save(display.figure_, path)
    return display


def plot_misclassified(clf, X, y, n=20, n_cols=10, image_shape=None, path=None):
    """Return a figure of the images ``clf`` gets wrong, most confident mistakes first.

    Each image is titled ``"true X / pred Y"``; the figure's title counts all mistakes. The
    most confident mistakes come first because they show what the model misunderstands,
    rather than digits that are ambiguous to anyone.

    Parameters
    ----------
    clf : fitted classifier
        A fitted classifier with ``predict_proba`` and ``classes_``, such as
        :class:`~skdigits.CNNDigitClassifier`.
    X : array-like of shape (n_samples, n_pixels) or (n_samples, height, width)
        Images to predict.
    y : array-like of shape (n_samples,)
        Their true labels.
    n : int, default=20
        Show at most this many images.
    n_cols : int, default=10
        Images per row.
    image_shape : tuple of two int, default=None
        ``(height, width)`` to show rows of pixels as; ``None`` means ``clf.image_shape_``.
        Give it for a pipeline, which has no ``image_shape_`` of its own.
    path : str or path-like, default=None
        If given, the figure is also saved there, as PNG unless the name says otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; it holds one empty axes when no image is misclassified.

    See Also
    --------
    plot_confusion_matrix : How often each digit is taken for each other.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdigits import CNNDigitClassifier
    >>> from skdigits.plotting import plot_misclassified
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNDigitClassifier(channels=(4, 8), max_epochs=3, random_state=0).fit(X, y)
    >>> fig = plot_misclassified(clf, X, y, n=5)
    >>> sum(1 for ax in fig.axes if ax.images)
    5
    """
    plt = _pyplot()
    y = np.asarray(y)
    proba = clf.predict_proba(X)
    y_pred = clf.classes_[proba.argmax(axis=1)]
    wrong = np.flatnonzero(y_pred != y)
    shown = wrong[np.argsort(-proba[wrong].max(axis=1), kind="stable")][:n]
    images = np.asarray(X).reshape(len(y), *(image_shape or clf.image_shape_))

    n_cols = max(1, min(n_cols, len(shown)))
    n_rows = max(1, math.ceil(len(shown) / n_cols))
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(1.3 * n_cols, 1.5 * n_rows + 0.6), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    # Fewer images than grid cells leave the last cells blank.
    for ax, i in zip(axes.flat, shown, strict=False):
        # Reversed gray: bright ink on a dark background is drawn as dark ink on paper.
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"true {y[i]} / pred {y_pred[i]}", fontsize=8)
    fig.suptitle(f"{len(wrong)} of {len(y)} images misclassified")
    _save(fig, path)
    return fig


def _pyplot():
    """Return ``matplotlib.pyplot``, or raise an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install skdigits[plot]") from exc
    return plt


def _save(fig, path):
    """Save ``fig`` to ``path`` unless it is None."""
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
