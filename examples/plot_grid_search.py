"""
Tune a pipeline with a grid search
==================================

Put :class:`~skdigits.ImageTransformer` and :class:`~skdigits.CNNDigitClassifier` in a
scikit-learn :class:`~sklearn.pipeline.Pipeline` and tune the learning rate and the width of
the network with :class:`~sklearn.model_selection.GridSearchCV`, as for any other estimator.
Pass ``--mnist`` to use MNIST and ``--full`` to search wider networks trained longer.
"""

import matplotlib.pyplot as plt
import pandas as pd
from _options import load_data, parse_options
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skdigits import CNNDigitClassifier, ImageTransformer

options = parse_options(__doc__)
X_train, X_test, y_train, y_test = load_data(options)
# Fast mode: few epochs, in small batches so that each epoch still takes many steps.
max_epochs, batch_size = (10, 128) if options.full else (4, 32)
channels = [(16, 32, 64), (32, 64, 128)] if options.full else [(8, 16), (16, 32)]

# %%
# Search
# ------
# Parameters of a pipeline step are named ``<step>__<parameter>``. ``n_jobs=1`` because
# torch already trains on every CPU core.
pipe = Pipeline(
    [
        ("images", ImageTransformer()),
        ("cnn", CNNDigitClassifier(max_epochs=max_epochs, batch_size=batch_size, random_state=0)),
    ]
)
param_grid = {"cnn__lr": [1e-3, 3e-3], "cnn__channels": channels}
search = GridSearchCV(pipe, param_grid, cv=3, n_jobs=1).fit(X_train, y_train)
print(f"best parameters: {search.best_params_}")
print(f"cross-validated accuracy: {search.best_score_:.4f}")
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.4f}")

# %%
# Scores of the grid
# ------------------
results = pd.DataFrame(search.cv_results_)
results["channels"] = results["param_cnn__channels"].astype(str)
table = results.pivot(index="channels", columns="param_cnn__lr", values="mean_test_score")
print(table)
ax = table.plot.barh(title="Grid search")
ax.set(xlabel="mean cross-validated accuracy", xlim=(table.to_numpy().min() - 0.05, 1))
ax.legend(title="learning rate")
plt.show()
