"""The scikit-learn baselines and the cross-validated comparison of models."""

from sklearn.dummy import DummyClassifier

from skdigits.baselines import ModelScore, baseline_models, compare_models, format_scores


def test_baseline_models_standardise_pixels_inside_each_model():
    models = baseline_models(random_state=0)

    assert list(models) == ["logistic regression", "RBF SVC", "MLP"]
    for model in models.values():
        assert type(model[0]).__name__ == "StandardScaler"


def test_compare_models_scores_each_model_in_order(small_digits):
    X, y = small_digits
    models = {
        "always 0": DummyClassifier(strategy="constant", constant=0),
        "RBF SVC": baseline_models()["RBF SVC"],
    }

    scores = compare_models(models, X, y, cv=3)

    assert [score.model for score in scores] == ["always 0", "RBF SVC"]
    assert scores[0].accuracy < 0.2 < 0.9 < scores[1].accuracy
    assert all(score.fit_time >= 0 and score.accuracy_std >= 0 for score in scores)


def test_format_scores_aligns_columns_to_the_longest_model_name():
    table = format_scores([ModelScore("a", 0.5, 0.1, 1.0), ModelScore("a long name", 1, 0, 2)])

    header, *rows = table.split("\n")
    assert header.startswith("model        mean accuracy")
    assert rows == [
        "a                   0.5000  0.1000               1.00",
        "a long name         1.0000  0.0000               2.00",
    ]
