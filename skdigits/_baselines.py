"""The scikit-learn models the CNN is compared with, and the cross-validated comparison.

Used by ``skdigits benchmark`` and by ``examples/plot_compare_baselines.py``, so that both
compare against the same models.
"""

from typing import NamedTuple

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


class ModelScore(NamedTuple):
    """Cross-validated accuracy and fit time of one model."""

    model: str
    accuracy: float
    accuracy_std: float
    fit_time: float


def baseline_models(random_state=None):
    """Return scikit-learn classifiers for pixel rows, by name, to compare the CNN with.

    Each is a pipeline that standardises the pixels first, as these models expect, so that
    the scaler is fitted inside each cross-validation fold.

    Parameters
    ----------
    random_state : int or None, default=None
        Seed of the models that draw random numbers.

    Returns
    -------
    models : dict of str to estimator
        Logistic regression, an RBF-kernel support vector machine and a multi-layer
        perceptron with early stopping.

    Examples
    --------
    >>> from skdigits._baselines import baseline_models
    >>> list(baseline_models())
    ['logistic regression', 'RBF SVC', 'MLP']
    """
    return {
        "logistic regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000, random_state=random_state)
        ),
        "RBF SVC": make_pipeline(StandardScaler(), SVC(kernel="rbf")),
        "MLP": make_pipeline(
            StandardScaler(), MLPClassifier(early_stopping=True, random_state=random_state)
        ),
    }


def compare_models(models, X, y, cv=5):
    """Return the cross-validated accuracy and fit time of each model.

    Parameters
    ----------
    models : dict of str to estimator
        The models to compare, by name.
    X : array-like of shape (n_samples, n_pixels)
        Images as rows of pixels.
    y : array-like of shape (n_samples,)
        Labels.
    cv : int or cross-validation generator, default=5
        Folds, as for :func:`sklearn.model_selection.cross_validate`; an int gives
        stratified folds.

    Returns
    -------
    scores : list of ModelScore
        One per model, in the order of ``models``.
    """
    scores = []
    for name, model in models.items():
        # n_jobs=1: torch already uses every core, and parallel folds would fight over them.
        result = cross_validate(model, X, y, cv=cv, n_jobs=1, error_score="raise")
        accuracy = result["test_score"]
        scores.append(ModelScore(name, accuracy.mean(), accuracy.std(), result["fit_time"].mean()))
    return scores


def format_scores(scores):
    """Return ``scores`` as a plain-text table: model, mean accuracy, std, mean fit time.

    Parameters
    ----------
    scores : list of ModelScore
        As returned by :func:`compare_models`.

    Returns
    -------
    table : str
        One header line and one line per model, without a trailing newline.

    Examples
    --------
    >>> from skdigits._baselines import ModelScore, format_scores
    >>> print(format_scores([ModelScore("RBF SVC", 0.98, 0.01, 0.05)]))
    model    mean accuracy     std  mean fit time (s)
    RBF SVC         0.9800  0.0100               0.05
    """
    width = max(len("model"), *(len(score.model) for score in scores))
    lines = [f"{'model':<{width}}  mean accuracy     std  mean fit time (s)"]
    lines += [
        f"{score.model:<{width}}  {score.accuracy:13.4f}  {score.accuracy_std:6.4f}"
        f"  {score.fit_time:17.2f}"
        for score in scores
    ]
    return "\n".join(lines)
