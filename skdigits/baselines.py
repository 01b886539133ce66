"""The scikit-learn models the CNN is compared with, and the cross-validated comparison.

``skdigits benchmark`` and the example gallery's baseline comparison both use these
functions, so that they compare against the same models in the same way:

- :func:`baseline_models` gives the scikit-learn classifiers, by name,
- :func:`compare_models` cross-validates any models on the same folds,
- :func:`format_scores` prints the result as a plain-text table,
- :class:`ModelScore` is one model's row of that table.
"""

from typing import NamedTuple

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

__all__ = ["ModelScore", "baseline_models", "compare_models", "format_scores"]


class ModelScore(NamedTuple):
    """Cross-validated accuracy and fit time of one model, as :func:`compare_models` gives.

    Parameters
    ----------
    model : str
        The model's name.
    accuracy : float
        Mean accuracy over the test folds.
    accuracy_std : float
        Standard deviation of the accuracy over the test folds.
    fit_time : float
        Mean time to fit the model on one fold's training images, in seconds.

    See Also
    --------
    compare_models : Cross-validate models and return their scores.
    format_scores : Print scores as a table.

    Examples
    --------
    >>> from skdigits.baselines import ModelScore
    >>> score = ModelScore("RBF SVC", accuracy=0.98, accuracy_std=0.01, fit_time=0.05)
    >>> score.accuracy
    0.98
    """

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

    See Also
    --------
    compare_models : Cross-validate these models next to the CNN.

    Examples
    --------
    >>> from skdigits.baselines import baseline_models
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
    """Return the cross-validated accuracy and fit time of each model, on the same folds.

    Parameters
    ----------
    models : dict of str to estimator
        The models to compare, by name, for example :func:`baseline_models` and a
        :class:`~skdigits.CNNDigitClassifier`.
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

    See Also
    --------
    format_scores : Print the scores as a table.

    Examples
    --------
    >>> from skdigits.baselines import baseline_models, compare_models
    >>> from skdigits.datasets import load_digits
    >>> X, y = load_digits()
    >>> models = {"RBF SVC": baseline_models()["RBF SVC"]}
    >>> scores = compare_models(models, X[:300], y[:300], cv=3)
    >>> [(score.model, round(float(score.accuracy), 2)) for score in scores]
    [('RBF SVC', 0.96)]
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

    See Also
    --------
    compare_models : Compute the scores.

    Examples
    --------
    >>> from skdigits.baselines import ModelScore, format_scores
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
