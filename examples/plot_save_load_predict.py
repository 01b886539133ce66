"""
Save a model, load it and predict your own image files
======================================================

Train a :class:`~skdigits.DigitNormalizer` and :class:`~skdigits.CNNDigitClassifier`
pipeline, save it as a safe ``.skd`` model file with :func:`skdigits.save`, load it back with
:func:`skdigits.load`, write a few test digits as scan-like PNG files (dark ink on light
paper, larger than the training images, off-centre) and predict them, as ``skdigits predict``
does. Pass ``--mnist`` to use MNIST and ``--full`` to train longer.
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _options import load_data, parse_options
from PIL import Image
from sklearn.pipeline import make_pipeline

import skdigits
from skdigits.cli import main

options = parse_options(__doc__)
X_train, X_test, y_train, y_test = load_data(options)
max_epochs = 10 if options.full else 4
n_images = 8

model = make_pipeline(
    skdigits.DigitNormalizer(), skdigits.CNNDigitClassifier(max_epochs=max_epochs, random_state=0)
)
model.fit(X_train, y_train)
folder = Path(tempfile.mkdtemp(prefix="skdigits-example-"))

# %%
# Save and load
# -------------
# A ``.skd`` file holds numbers and text only, so loading one never runs code from it,
# unlike pickle. The loaded pipeline predicts exactly what the original does.
model_path = folder / "digits-model.skd"
skdigits.save(model, model_path)
loaded = skdigits.load(model_path)
print(f"{model_path.name}: {model_path.stat().st_size} bytes")
print("same predictions:", np.array_equal(loaded.predict(X_test), model.predict(X_test)))

# %%
# Write digits as scan-like PNG files
# -----------------------------------
# Dark ink on light paper, six times larger than the training images, with a wide margin
# on the left: nothing like the training images, until the normaliser has found the ink,
# cropped, scaled and centred it.
side = model[0].image_shape_[0]
paths = []
for i, (pixels, label) in enumerate(zip(X_test[:n_images], y_test[:n_images], strict=True)):
    ink = pixels.reshape(side, side) / pixels.max()
    page = np.pad(np.kron(ink, np.ones((6, 6))), ((6, 6), (30, 6)))
    paths.append(folder / f"digit{i}_true{label}.png")
    Image.fromarray(np.round(235 - 200 * page).astype(np.uint8)).save(paths[-1])

# %%
# Predict the files
# -----------------
# The pipeline takes the file paths as they are.
proba = loaded.predict_proba([str(path) for path in paths])
labels = loaded.classes_[proba.argmax(axis=1)]

fig, axes = plt.subplots(1, n_images, figsize=(1.4 * n_images, 2), layout="constrained")
for ax, path, label, probability in zip(axes, paths, labels, proba.max(axis=1), strict=True):
    ax.imshow(Image.open(path), cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"{label} ({probability:.0%})", fontsize=9)
    ax.set_axis_off()
fig.suptitle("Predicted digit (probability) of each PNG file")

# %%
# The same from a shell
# ---------------------
# ``skdigits predict IMAGE... --model MODEL`` prints the path, label and probability of each
# file; without ``--model`` it uses the pretrained MNIST model that ships with skdigits.
main(["predict", *map(str, paths), "--model", str(model_path)])
shutil.rmtree(folder)
plt.show()
