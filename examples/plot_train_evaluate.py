"""
Train, evaluate and plot a digit classifier
===========================================

Fit :class:`~skdigits.CNNDigitClassifier` on scikit-learn's bundled 8x8 digits, report its
accuracy on held-out images, and plot its learning curves, its confusion matrix and the test
images it gets wrong. Pass ``--mnist`` to use MNIST and ``--full`` to train longer.
"""

import matplotlib.pyplot as plt
from _options import load_data, parse_options
from sklearn.metrics import classification_report

from skdigits import CNNDigitClassifier
from skdigits.plotting import plot_confusion_matrix, plot_learning_curves, plot_misclassified

options = parse_options(__doc__)
X_train, X_test, y_train, y_test = load_data(options)
max_epochs = 10 if options.full else 4

# %%
# Train
# -----
# ``verbose=1`` prints skorch's table of the loss, validation accuracy and duration of each
# epoch; the best epochs are highlighted. The classifier keeps the weights of the epoch with
# the lowest validation loss.
clf = CNNDigitClassifier(max_epochs=max_epochs, random_state=0, verbose=1)
clf.fit(X_train, y_train)
print(f"best epoch: {clf.best_epoch_}, test accuracy: {clf.score(X_test, y_test):.4f}")
print(classification_report(y_test, clf.predict(X_test), digits=4))

# %%
# Learning curves
# ---------------
# The dashed line marks the epoch whose weights were kept.
plot_learning_curves(clf)

# %%
# Confusion matrix and mistakes
# -----------------------------
# Which digits are taken for which, and the test images behind the off-diagonal cells,
# the most confident mistakes first.
plot_confusion_matrix(clf, X_test, y_test)
plot_misclassified(clf, X_test, y_test, n=10)
plt.show()
