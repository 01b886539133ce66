"""Plots of a fitted classifier, drawn headless."""

import sys

import numpy as np
import pytest

from skdigits import CNNDigitClassifier
from skdigits.plotting import plot_confusion_matrix, plot_learning_curves, plot_misclassified

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


def fit_tiny(X, y, **params):
    """Return a classifier small enough to fit in a fraction of a second."""
    return CNNDigitClassifier(
        channels=(4, 8), max_epochs=3, batch_size=64, device="cpu", random_state=0, **params
    ).fit(X, y)


@pytest.fixture(scope="module")
def clf(small_digits):
    return fit_tiny(*small_digits)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labels_of(ax):
    return [line.get_label() for line in ax.get_lines()]


def test_learning_curves_show_losses_and_mark_the_best_epoch(clf):
    fig = plot_learning_curves(clf)

    loss_ax, accuracy_ax = fig.axes
    assert labels_of(loss_ax) == [
        "training loss",
        "validation loss",
        f"best epoch ({clf.best_epoch_})",
    ]
    best_line = loss_ax.get_lines()[-1]
    assert list(best_line.get_xdata()) == [clf.best_epoch_, clf.best_epoch_]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), clf.history_[:, "train_loss"])
    assert loss_ax.get_title() == "Learning curves"


def test_learning_curves_show_validation_accuracy_on_a_second_axis(clf):
    fig = plot_learning_curves(clf)

    accuracy_ax = fig.axes[1]
    assert labels_of(accuracy_ax) == ["validation accuracy"]
    np.testing.assert_allclose(
        accuracy_ax.get_lines()[0].get_ydata(), clf.history_[:, "valid_acc"]
    )


def test_learning_curves_without_validation_show_the_training_loss(small_digits):
    clf = fit_tiny(*small_digits, validation_fraction=0)

    fig = plot_learning_curves(clf)

    assert len(fig.axes) == 1
    assert labels_of(fig.axes[0]) == ["training loss", f"best epoch ({clf.n_iter_})"]


def test_learning_curves_draw_on_the_given_axes(clf):
    fig, ax = plt.subplots()

    assert plot_learning_curves(clf, ax=ax) is fig
    assert len(ax.get_lines()) == 3


def test_confusion_matrix_counts_every_image_and_titles_the_accuracy(clf, small_digits):
    X, y = small_digits

    display = plot_confusion_matrix(clf, X, y)

    assert display.confusion_matrix.sum() == len(y)
    accuracy = np.trace(display.confusion_matrix) / len(y)
    assert display.ax_.get_title() == f"Accuracy {accuracy:.1%} on {len(y)} images"


def test_confusion_matrix_passes_options_to_scikit_learn(clf, small_digits):
    display = plot_confusion_matrix(clf, *small_digits, normalize="true")

    np.testing.assert_allclose(display.confusion_matrix.sum(axis=1), 1)


def test_misclassified_titles_each_image_with_true_and_predicted_label(clf, small_digits):
    X, y = small_digits
    y_pred = clf.predict(X)
    n_wrong = int(np.sum(y_pred != y))

    fig = plot_misclassified(clf, X, y, n=6)

    titled = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titled) == min(6, n_wrong)
    wrong_pairs = {f"true {t} / pred {p}" for t, p in zip(y, y_pred, strict=True) if t != p}
    assert set(titled) <= wrong_pairs
    assert fig.get_suptitle() == f"{n_wrong} of {len(y)} images misclassified"


def test_misclassified_shows_images_in_the_fitted_shape(clf, small_digits):
    X, y = small_digits
    wrong_labels = (y + 1) % 10

    fig = plot_misclassified(clf, X, wrong_labels, n=1)

    assert fig.axes[0].images[0].get_array().shape == clf.image_shape_


def test_misclassified_without_mistakes_gives_an_empty_figure(clf, small_digits):
    X, _ = small_digits

    fig = plot_misclassified(clf, X, clf.predict(X))

    assert not any(ax.images for ax in fig.axes)
    assert fig.get_suptitle() == f"0 of {len(X)} images misclassified"


@pytest.mark.parametrize(
    "plot",
    [plot_learning_curves, plot_confusion_matrix, plot_misclassified],
    ids=lambda plot: plot.__name__,
)
def test_plots_are_saved_as_png_when_given_a_path(plot, clf, small_digits, tmp_path):
    path = tmp_path / "plot.png"
    args = () if plot is plot_learning_curves else small_digits

    plot(clf, *args, path=path)

    assert path.read_bytes().startswith(b"\x89PNG")


def test_plots_without_matplotlib_say_how_to_install_it(clf, monkeypatch):
    # A None entry in sys.modules makes the import fail, as if matplotlib were missing.
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)

    with pytest.raises(ImportError, match=r"pip install skdigits\[plot\]"):
        plot_learning_curves(clf)
