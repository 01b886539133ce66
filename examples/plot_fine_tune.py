"""
Fine-tune the pretrained model on a few images of your own
==========================================================

The model that ships with skdigits (:func:`skdigits.load_pretrained`) learned MNIST's
handwriting. Other handwriting, scanned and framed another way, is read less well as it
is; a few labelled images of it fix most of that. :func:`skdigits.fine_tune` trains a copy
of the model further on them, starting from its weights, as ``skdigits train --from
pretrained`` does on a folder of image files.

Here scikit-learn's bundled 8x8 digits (other writers, other scanning, a quarter of
MNIST's resolution) play the part of your own images: the pretrained model as it is, a new
:class:`~skdigits.CNNDigitClassifier` trained from scratch and the fine-tuned model are
scored on the same held-out digits, for 50, 200 and 500 training images. By default each
fine-tuning runs 5 epochs, so that the example takes a minute or two on two CPU cores; pass
``--full`` for the schedule ``fine_tune`` chooses itself, which BENCHMARKS.md measures.
"""

import argparse

import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, train_test_split

import skdigits
from skdigits.datasets import load_digits

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--full", action="store_true", help="fine-tune for the automatic epochs")
# Without --full, 5 epochs instead of the automatic schedule (up to 100 epochs on few images):
# on a CPU without bfloat16 instructions each of the 13 fine-tunings below took 16-37 s.
fine_tuning = {} if parser.parse_args().full else {"max_epochs": 5}

X, y = load_digits()  # 1,797 rows of 64 pixels, 0..16
pretrained = skdigits.load_pretrained()
sizes = [50, 200, 500]
scores = {"pretrained as it is": [], "trained from scratch": [], "fine-tuned": []}
splits = {}

for n in sizes:
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=n, stratify=y, random_state=0
    )
    splits[n] = X_train, X_test, y_train, y_test
    scratch = skdigits.CNNDigitClassifier(random_state=0).fit(X_train, y_train)
    # The pretrained model's DigitNormalizer frames the 8x8 rows as it framed MNIST's
    # digits; the copy keeps that normalisation and starts from the pretrained weights.
    tuned = skdigits.fine_tune(
        pretrained, X_train, y_train, random_state=0, verbose=0, **fine_tuning
    )
    scores["pretrained as it is"].append(pretrained.score(X_test, y_test))
    scores["trained from scratch"].append(scratch.score(X_test, y_test))
    scores["fine-tuned"].append(tuned.score(X_test, y_test))
    print(
        f"{n:>3} training images: "
        + ", ".join(f"{name} {values[-1]:.2%}" for name, values in scores.items())
    )

# %%
# The fewer the images, the more fine-tuning helps
# ------------------------------------------------
# With 50 images (5 per class) a network trained from scratch misreads about one digit in
# ten; the fine-tuned model, about one in fifty. By 500 images training from scratch has
# caught up: with the automatic schedule (``--full``) the two are level over five seeds in
# BENCHMARKS.md ("Fine-tuning the bundled model"), and 5 epochs of fine-tuning fall behind.
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
for (name, values), marker in zip(scores.items(), "os^", strict=True):
    ax.plot(sizes, [100 * v for v in values], marker=marker, label=name)
ax.set_xscale("log")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_xlabel("training images (8x8 digits)")
ax.set_ylabel("held-out accuracy (%)")
ax.legend()
plt.show()

# %%
# Choosing the fine-tuning settings by cross-validation
# -----------------------------------------------------
# :class:`skdigits.FineTunedClassifier` is fine-tuning as an estimator: ``fit`` fine-tunes a
# copy of the bundled model (by default), and scikit-learn's searches clone it and
# fine-tune afresh on each fold. Here a search over the peak learning rate (1e-3 unless
# told) on the 200 training images, with three folds; the refitted best model is scored on
# the other 1,597 digits.
X_train, X_test, y_train, y_test = splits[200]
search = GridSearchCV(
    skdigits.FineTunedClassifier(random_state=0, **fine_tuning), {"lr": [3e-4, 1e-3, 3e-3]}, cv=3
)
search.fit(X_train, y_train)
results = search.cv_results_
for lr, mean in zip(results["param_lr"], results["mean_test_score"], strict=True):
    print(f"lr={lr:g}: {mean:.2%} over three folds")
print(f"best {search.best_params_}: {search.score(X_test, y_test):.2%} on the held-out digits")

# %%
# Each fit of the search fine-tunes on 133 images and scores 67, so a rate's mean score is
# uncertain by about a point, and rates that score alike are ranked by chance (a tie goes
# to the first). BENCHMARKS.md compares the rates over five seeds on 50, 200 and 500 of
# these digits: 1e-3, the default, did best overall.
