"""
Compare with scikit-learn baselines
===================================

Cross-validate :class:`~skdigits.CNNDigitClassifier` next to logistic regression, an RBF
support vector machine and a multi-layer perceptron, on the same folds, and compare their
accuracy and fit time. ``skdigits benchmark`` runs the same comparison from a shell. Pass
``--mnist`` to use MNIST and ``--full`` for more epochs and folds.
"""

import matplotlib.pyplot as plt
from _options import load_data, parse_options

from skdigits import CNNDigitClassifier
from skdigits.baselines import baseline_models, compare_models, format_scores

options = parse_options(__doc__)
X_train, _, y_train, _ = load_data(options)
X_train = X_train.reshape(len(X_train), -1)
# Fast mode: few epochs, in small batches so that each epoch still takes many steps.
max_epochs, batch_size, cv = (10, 128, 5) if options.full else (4, 32, 3)

# %%
# Cross-validate
# --------------
# The baselines standardise the pixels inside each fold; the CNN learns its own scaling.
models = {
    "CNNDigitClassifier": CNNDigitClassifier(
        max_epochs=max_epochs, batch_size=batch_size, random_state=0
    ),
    **baseline_models(random_state=0),
}
scores = compare_models(models, X_train, y_train, cv=cv)
print(format_scores(scores))

# %%
# Accuracy and fit time
# ---------------------
names = [score.model for score in scores]
fig, (acc_ax, time_ax) = plt.subplots(1, 2, figsize=(9, 3), sharey=True, layout="constrained")
acc_ax.barh(names, [s.accuracy for s in scores], xerr=[s.accuracy_std for s in scores])
acc_ax.set(xlabel="mean accuracy", xlim=(min(s.accuracy for s in scores) - 0.05, 1))
time_ax.barh(names, [s.fit_time for s in scores])
time_ax.set(xlabel="mean fit time (s)")
fig.suptitle(f"{cv}-fold cross-validation on {len(y_train)} images")
plt.show()
