"""
Save a model, load it and predict image files
=============================================

Train :class:`~skdigits.CNNDigitClassifier`, save it as a safe ``.skd`` model file, load it
back with :func:`skdigits.load`, write a few test digits as PNG files, and predict their
digits the way ``skdigits predict`` does. Pass ``--mnist`` to use MNIST and ``--full`` to
train longer.
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _options import load_data, parse_options
from PIL import Image

import skdigits
from skdigits.cli import main, match_pixel_range
from skdigits.datasets import load_image

options = parse_options(__doc__)
X_train, X_test, y_train, y_test = load_data(options)
max_epochs = 10 if options.full else 4
n_images = 8

clf = skdigits.CNNDigitClassifier(max_epochs=max_epochs, random_state=0)
clf.fit(X_train, y_train)
folder = Path(tempfile.mkdtemp(prefix="skdigits-example-"))

# %%
# Save and load
# -------------
# A ``.skd`` file holds numbers and text only, so loading one never runs code from it,
# unlike pickle. The loaded classifier predicts exactly what the original does.
model_path = folder / "digits-model.skd"
clf.save(model_path)
loaded = skdigits.load(model_path)
print(f"{model_path.name}: {model_path.stat().st_size} bytes")
print("same predictions:", np.array_equal(loaded.predict(X_test), clf.predict(X_test)))

# %%
# Write digits as PNG files
# -------------------------
# Image files hold pixels from 0 to 255, while the bundled digits use 0 to 16: stretch the
# training scale ``(low, span)`` onto 0..255.
low, span = clf.pixel_range_
paths = []
for i, (pixels, label) in enumerate(zip(X_test[:n_images], y_test[:n_images], strict=True)):
    image = np.round((pixels.reshape(clf.image_shape_) - low) / span * 255).astype(np.uint8)
    paths.append(folder / f"digit{i}_true{label}.png")
    Image.fromarray(image).save(paths[-1])

# %%
# Predict the files
# -----------------
# :func:`~skdigits.datasets.load_image` reads each file as grayscale at the model's image
# size, and :func:`~skdigits.cli.match_pixel_range` maps its 0..255 pixels back onto the
# scale the model was trained on.
images = np.stack([load_image(path, image_shape=loaded.image_shape_) for path in paths])
proba = loaded.predict_proba(match_pixel_range(images, loaded.pixel_range_))
labels = loaded.classes_[proba.argmax(axis=1)]

fig, axes = plt.subplots(1, n_images, figsize=(1.4 * n_images, 2), layout="constrained")
for ax, image, label, probability in zip(axes, images, labels, proba.max(axis=1), strict=True):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(f"{label} ({probability:.0%})", fontsize=9)
    ax.set_axis_off()
fig.suptitle("Predicted digit (probability) of each PNG file")

# %%
# The same from a shell
# ---------------------
# ``skdigits predict MODEL IMAGE...`` prints the path, label and probability of each file.
main(["predict", str(model_path), *map(str, paths)])
shutil.rmtree(folder)
plt.show()
