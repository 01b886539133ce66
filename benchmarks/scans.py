"""Benchmark on MNIST test digits rendered as scans of handwriting on paper.

Users feed skdigits their own images: scans and photos of dark ink on light paper, off-centre,
with margins, uneven paper tone and sensor noise, saved as PNG or JPEG. This script renders
MNIST digits that way (see ``render_digit`` and ``render_number``) and measures the library
on them. Each seed gives an independent set of images: seed s draws everything, including
which MNIST images are used, from ``np.random.default_rng(s)``.

    python benchmarks/scans.py digits                    # accuracy on 2000 scans per seed
    python benchmarks/scans.py digits --model FILE --n 500 --seeds 0 1 2 3 4
    python benchmarks/scans.py numbers --n 500           # whole-number accuracy, 2-5 digits
    python benchmarks/scans.py digits --pen              # digits redrawn with pens of any width
    python benchmarks/scans.py numbers --touching        # digits that touch their neighbours
    python benchmarks/scans.py numbers --touching --no-cut   # ... read without cutting them
    python benchmarks/scans.py finetune                  # `skdigits train` on 200 scans
    python benchmarks/scans.py sheet --out sheet.png     # contact sheet, to look at
    python benchmarks/scans.py testdata --out tests/data/scans

Every measuring command (digits, numbers, finetune) takes ``--json FILE`` to also write its
figures, ``--keep DIR`` to keep the rendered images (a temporary folder otherwise) and
``--data-home DIR`` for the MNIST files. ``digits`` and ``numbers`` predict with
``--model FILE`` (``skdigits.load``), by default with ``skdigits.load_pretrained()``.
``finetune`` runs the ``skdigits`` command as a user would, in subprocesses.

Not part of the unit tests: ``finetune`` trains six models.
"""

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.morphology import skeletonize

import skdigits
from skdigits.datasets import load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SEEDS = (0, 1, 2)

# MNIST digits are drawn in a 20x20 box centred in a 28x28 frame.
MNIST_BOX = 20
# Height in pixels of the digit's 20-px box once scaled onto the page.
DIGIT_HEIGHT = (40, 120)
# Base height of the digits of a number; each digit is within NUMBER_HEIGHT_SPREAD of it.
NUMBER_HEIGHT = (40, 100)
NUMBER_HEIGHT_SPREAD = 0.15
# Vertical offset of each digit of a number, as a fraction of the base height.
NUMBER_BASELINE_SHIFT = 0.10
# Gap between neighbouring digits' ink boxes, as a fraction of the base height.
NUMBER_GAP = (0.1, 0.6)
# With --touching: gaps from a small overlap to a small space, so many digits touch.
TOUCHING_GAP = (-0.1, 0.1)
NUMBER_LENGTH = (2, 5)
# With --pen, digits are redrawn with a pen this wide, as a fraction of the digit's height:
# from a fine pen to a marker (MNIST's own strokes are about 0.12).
PEN_WIDTH = (0.02, 0.15)
# Page size over digit size, drawn independently for height and width.
PAGE_SCALE = (1.3, 2.5)
# Paper: mean brightness, the largest difference a linear gradient makes across the page, and
# the largest deviation of a smooth low-frequency blotch.
PAPER_TONE = (170, 245)
PAPER_GRADIENT = 40
PAPER_BLOTCH = 15
# Grey level of the ink where the digit is fully inked.
INK_TONE = (20, 90)
# Standard deviation of the Gaussian sensor noise, in grey levels.
NOISE_SIGMA = (2, 8)
JPEG_QUALITY = (70, 95)
# Test data: small files so the repository stays light.
TESTDATA_SEED = 0
TESTDATA_DIGIT_HEIGHT = (40, 60)
TESTDATA_NUMBER_HEIGHT = (40, 50)
TESTDATA_NUMBER_LENGTH = 3
FINETUNE_TRAIN_PER_CLASS = 20
FINETUNE_TEST_PER_CLASS = 50
EVALUATE_LINE = re.compile(r"^accuracy: ([0-9.]+) on (\d+) ", re.MULTILINE)


def _ink(image28, height, rng, pen=False):
    """Return the digit's ink coverage (0..1) scaled so its 20-px box is ``height`` px high.

    The scaled 28x28 frame is cropped to the bounding box of its non-zero pixels, so the
    result's edges are the digit's ink box.
    """
    frame = Image.fromarray(np.asarray(image28, dtype=np.uint8).reshape(28, 28))
    size = max(1, round(28 * height / MNIST_BOX))
    resample = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)[rng.integers(2)]
    alpha = np.asarray(frame.resize((size, size), resample), dtype=np.float64) / 255
    rows, cols = np.nonzero(alpha)
    if not len(rows):
        return np.zeros((1, 1))
    alpha = alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return _pen(alpha, height, rng) if pen else alpha


def _pen(ink, height, rng):
    """Return the digit redrawn along its skeleton with a round pen of random width.

    MNIST's strokes are about an eighth of the digit's height wide at any size; real pens
    are not: a fine pen draws 2-pixel lines on a 100-pixel digit.
    """
    radius = rng.uniform(*PEN_WIDTH) * height / 2
    margin = int(np.ceil(radius)) + 1
    skeleton = skeletonize(np.pad(ink, margin) > 0.5)
    distance = ndimage.distance_transform_edt(~skeleton)
    # Coverage falls from 1 to 0 over the pixel at the pen's edge: an anti-aliased line.
    return np.clip(radius + 0.5 - distance, 0, 1)


def _paper(shape, rng):
    """Return an uneven paper tone of ``shape``: a base tone, a linear gradient and a blotch."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * x + np.sin(angle) * y
    span = np.ptp(along) or 1.0
    gradient = rng.uniform(0, PAPER_GRADIENT) * ((along - along.min()) / span - 0.5)
    # A few random values bicubically spread over the page: soft, low-frequency shading.
    cells = rng.integers(2, 5, size=2)
    coarse = rng.normal(size=cells).astype(np.float32)
    blotch = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    blotch = rng.uniform(0, PAPER_BLOTCH) * blotch / (np.abs(blotch).max() or 1.0)
    return rng.uniform(*PAPER_TONE) + gradient + blotch


def _page(ink, page_shape, rng):
    """Return a uint8 page of ``page_shape`` with the ink coverage drawn at a random place."""
    height, width = page_shape
    top = rng.integers(0, height - ink.shape[0] + 1)
    left = rng.integers(0, width - ink.shape[1] + 1)
    alpha = np.zeros(page_shape)
    alpha[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    paper = np.minimum(_paper(page_shape, rng), 255)
    page = paper * (1 - alpha) + rng.uniform(*INK_TONE) * alpha
    page += rng.normal(0, rng.uniform(*NOISE_SIGMA), page_shape)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)


def _page_shape(ink_shape, digit_size, rng):
    """Return a page shape whose margins are those of a page PAGE_SCALE times ``digit_size``."""
    extra = (rng.uniform(*PAGE_SCALE, size=2) - 1) * digit_size
    return tuple(int(n + round(e)) for n, e in zip(ink_shape, extra, strict=True))


def render_digit(image28, rng, height=DIGIT_HEIGHT, pen=False):
    """Return a 2-D uint8 page showing the MNIST digit as dark ink on light paper.

    The digit's 20-px box is scaled to a height drawn from ``height`` and placed at a random
    position on a page 1.3 to 2.5 times the box's size in each direction.
    """
    size = rng.uniform(*height)
    ink = _ink(image28, size, rng, pen)
    scales = rng.uniform(*PAGE_SCALE, size=2)
    page_shape = tuple(max(n, round(s * size)) for n, s in zip(ink.shape, scales, strict=True))
    return _page(ink, page_shape, rng)


def render_number(images28, rng, height=NUMBER_HEIGHT, pen=False, gap=NUMBER_GAP):
    """Return a 2-D uint8 page showing the MNIST digits side by side, left to right.

    Each digit has its own height and baseline around a common base height drawn from
    ``height``; the gaps between neighbouring ink boxes are drawn from ``gap``, in base
    heights: by default 0.1 to 0.6, so digits never overlap; negative gaps make neighbours
    overlap and touch. The margins, paper and noise are those of :func:`render_digit`.
    """
    base = rng.uniform(*height)
    inks = [
        _ink(
            image, base * rng.uniform(1 - NUMBER_HEIGHT_SPREAD, 1 + NUMBER_HEIGHT_SPREAD), rng, pen
        )
        for image in images28
    ]
    # Each digit's ink box rests on the common baseline, shifted up or down.
    bottoms = [
        round(rng.uniform(-NUMBER_BASELINE_SHIFT, NUMBER_BASELINE_SHIFT) * base) for _ in inks
    ]
    gaps = [round(rng.uniform(*gap) * base) for _ in inks[1:]]
    top = min(b - ink.shape[0] for b, ink in zip(bottoms, inks, strict=True))
    width = sum(ink.shape[1] for ink in inks) + sum(gaps)
    line = np.zeros((max(bottoms) - top, width))
    left = 0
    for ink, bottom, gap in zip(inks, bottoms, [*gaps, 0], strict=True):
        row = bottom - top
        # Maximum: with negative gaps, neighbouring digits overlap and their ink touches.
        region = line[row - ink.shape[0] : row, left : left + ink.shape[1]]
        np.maximum(region, ink, out=region)
        left += ink.shape[1] + gap
    return _page(line, _page_shape(line.shape, base, rng), rng)


def save_page(page, stem, index, rng):
    """Save the page as ``stem.png`` (even ``index``) or ``stem.jpg`` and return the path.

    JPEG quality is drawn from 70 to 95.
    """
    stem = Path(stem)
    image = Image.fromarray(page)
    if index % 2 == 0:
        path = stem.with_suffix(".png")
        image.save(path)
    else:
        path = stem.with_suffix(".jpg")
        image.save(path, quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    return path


def write_scans(folder, X, y, rng, per_class=None, pen=False):
    """Write digit scans into ``folder/<label>/<index>.png|jpg``; return paths and labels.

    ``per_class`` picks that many random images of each class from ``X, y``; by default all
    images are written, in order. The layout is the one ``torchvision.datasets.ImageFolder``
    reads.
    """
    y = np.asarray(y)
    if per_class is None:
        chosen = np.arange(len(y))
    else:
        chosen = np.concatenate(
            [
                rng.choice(np.flatnonzero(y == label), per_class, replace=False)
                for label in np.unique(y)
            ]
        )
    paths, labels = [], []
    for index, i in enumerate(chosen):
        label_folder = Path(folder) / str(y[i])
        label_folder.mkdir(parents=True, exist_ok=True)
        page = render_digit(X[i], rng, pen=pen)
        paths.append(save_page(page, label_folder / str(index), index, rng))
        labels.append(y[i].item())
    return paths, labels


def write_numbers(folder, X, y, n, rng, pen=False, gap=NUMBER_GAP):
    """Write ``n`` number scans of 2 to 5 random digits; return paths and digit strings."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for index in range(n):
        chosen = rng.integers(0, len(y), size=rng.integers(NUMBER_LENGTH[0], NUMBER_LENGTH[1] + 1))
        page = render_number(X[chosen], rng, pen=pen, gap=gap)
        paths.append(save_page(page, folder / str(index), index, rng))
        labels.append("".join(str(label) for label in y[chosen]))
    return paths, labels


def _one_stroke(X):
    """Return a mask of the MNIST images whose ink is one connected piece, no stray marks."""
    return np.array(
        [
            ndimage.label(image.reshape(28, 28) > 0, structure=np.ones((3, 3)))[1] == 1
            for image in X
        ]
    )


def write_testdata(out, data_home):
    """Write one small scan per digit class and one 3-digit number page into ``out``.

    Only MNIST images drawn in one connected stroke are used (97% of them): a stray mark,
    such as a second bar beside a 1, would make a test's expected label arguable.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X, y = load_mnist("test", data_home=data_home)
    clean = _one_stroke(X)
    rng = np.random.default_rng(TESTDATA_SEED)
    paths = []
    for label in range(10):
        i = rng.choice(np.flatnonzero(clean & (y == label)))
        page = render_digit(X[i], rng, height=TESTDATA_DIGIT_HEIGHT)
        paths.append(save_page(page, out / f"digit{label}_{i}", label, rng))
    chosen = rng.choice(np.flatnonzero(clean), TESTDATA_NUMBER_LENGTH)
    page = render_number(X[chosen], rng, height=TESTDATA_NUMBER_HEIGHT)
    paths.append(save_page(page, out / f"number_{''.join(map(str, y[chosen]))}", 0, rng))
    return paths


def _summary(values):
    """Return mean, std, min and max of the per-seed figures."""
    values = np.asarray(values, dtype=float)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _print_summary(name, values):
    s = _summary(values)
    print(
        f"{name}: {100 * s['mean']:.2f}% +- {100 * s['std']:.2f} "
        f"(min..max {100 * s['min']:.2f}..{100 * s['max']:.2f}) over {len(values)} seeds"
    )
    return s


def _load_model(model):
    """Return the model of ``--model FILE``, or the pretrained model."""
    return skdigits.load(model) if model else skdigits.load_pretrained()


def run_digits(options, work):
    """Return the accuracy on ``options.n`` single-digit scans per seed."""
    X, y = load_mnist("test", data_home=options.data_home)
    model = _load_model(options.model)
    per_seed = []
    for seed in options.seeds:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(y), options.n, replace=False)
        begin = time.perf_counter()
        paths, labels = write_scans(
            work / f"digits-seed{seed}", X[chosen], y[chosen], rng, pen=options.pen
        )
        render_time = time.perf_counter() - begin
        begin = time.perf_counter()
        predicted = model.predict([str(path) for path in paths])
        predict_time = time.perf_counter() - begin
        # Labels compare as text: a model trained on an image folder predicts folder names.
        correct = [str(p) == str(t) for p, t in zip(predicted, labels, strict=True)]
        accuracy = float(np.mean(correct))
        per_seed.append(
            {
                "seed": seed,
                "n": len(labels),
                "accuracy": accuracy,
                "render_time": render_time,
                "predict_time": predict_time,
            }
        )
        print(
            f"seed {seed}: accuracy {100 * accuracy:.2f}% on {len(labels)} scans "
            f"(predict {predict_time:.1f} s, {len(labels) / predict_time:,.0f} images/s)",
            flush=True,
        )
    summary = _print_summary("accuracy", [r["accuracy"] for r in per_seed])
    return {"per_seed": per_seed, "accuracy": summary}


def run_numbers(options, work):
    """Return the whole-number accuracy on ``options.n`` number scans per seed."""
    X, y = load_mnist("test", data_home=options.data_home)
    model = _load_model(options.model)
    per_seed = []
    for seed in options.seeds:
        rng = np.random.default_rng(seed)
        paths, labels = write_numbers(
            work / f"numbers-seed{seed}",
            X,
            y,
            options.n,
            rng,
            pen=options.pen,
            gap=TOUCHING_GAP if options.touching else NUMBER_GAP,
        )
        begin = time.perf_counter()
        predicted, confidence = skdigits.read_numbers(
            model, [str(path) for path in paths], cut_touching=not options.no_cut
        )
        confidence = np.asarray(confidence, dtype=float)
        predict_time = time.perf_counter() - begin
        correct = np.array([p == t for p, t in zip(predicted, labels, strict=True)])
        lengths = np.array([len(label) for label in labels])
        counts = dict(sorted(Counter(lengths.tolist()).items()))
        by_length = {k: float(correct[lengths == k].mean()) for k in counts}
        per_seed.append(
            {
                "seed": seed,
                "n": len(labels),
                "accuracy": float(correct.mean()),
                "accuracy_by_length": by_length,
                "count_by_length": counts,
                "mean_confidence_correct": float(np.mean(confidence[correct]))
                if correct.any()
                else None,
                "mean_confidence_wrong": float(np.mean(confidence[~correct]))
                if (~correct).any()
                else None,
                "predict_time": predict_time,
            }
        )
        lengths_text = ", ".join(f"{k} digits {100 * a:.1f}%" for k, a in by_length.items())
        print(
            f"seed {seed}: whole-number accuracy {100 * correct.mean():.2f}% on {len(labels)} "
            f"numbers ({lengths_text}; predict {predict_time:.1f} s)",
            flush=True,
        )
    summary = _print_summary("whole-number accuracy", [r["accuracy"] for r in per_seed])
    by_length = {}
    for k in range(NUMBER_LENGTH[0], NUMBER_LENGTH[1] + 1):
        values = [r["accuracy_by_length"][k] for r in per_seed if k in r["accuracy_by_length"]]
        if values:
            by_length[k] = _print_summary(f"  {k} digits", values)
    return {"per_seed": per_seed, "accuracy": summary, "accuracy_by_length": by_length}


def _skdigits(*args):
    """Run the ``skdigits`` command; return its stdout and wall time."""
    command = [sys.executable, "-m", "skdigits", *map(str, args)]
    begin = time.perf_counter()
    try:
        done = subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{exc.stderr}") from exc
    return done.stdout, time.perf_counter() - begin


def _evaluate(model_path, test_folder):
    """Return the accuracy and image count printed by ``skdigits evaluate``."""
    # Another folder than the training one: evaluate scores every image of it.
    output, _ = _skdigits("evaluate", model_path, "--dataset", test_folder)
    match = EVALUATE_LINE.search(output)
    if match is None:
        raise RuntimeError(f"no 'accuracy: X on N images' line in:\n{output}")
    return float(match[1]), int(match[2])


def run_finetune(options, work):
    """Return the accuracy of models trained on 200 scans, fine-tuned and from scratch."""
    X_train, y_train = load_mnist("train", data_home=options.data_home)
    X_test, y_test = load_mnist("test", data_home=options.data_home)
    per_seed = []
    for seed in options.seeds:
        rng = np.random.default_rng(seed)
        folder = work / f"finetune-seed{seed}"
        train_folder, test_folder = folder / "train", folder / "test"
        write_scans(train_folder, X_train, y_train, rng, per_class=FINETUNE_TRAIN_PER_CLASS)
        write_scans(test_folder, X_test, y_test, rng, per_class=FINETUNE_TEST_PER_CLASS)
        result = {"seed": seed}
        for name, extra in (("finetuned", ["--from", "pretrained"]), ("scratch", [])):
            model_path = folder / f"{name}.skd"
            _, train_time = _skdigits(
                "train",
                "--dataset",
                train_folder,
                *extra,
                "--out",
                model_path,
                "--quiet",
                "--random-state",
                seed,
                # The whole folder of 20 scans per class trains; the test scans are others.
                "--test-size",
                0,
            )
            accuracy, n = _evaluate(model_path, test_folder)
            result[name] = {"accuracy": accuracy, "n_test": n, "train_time": train_time}
        per_seed.append(result)
        print(
            f"seed {seed}: fine-tuned {100 * result['finetuned']['accuracy']:.2f}% "
            f"(train {result['finetuned']['train_time']:.1f} s), from scratch "
            f"{100 * result['scratch']['accuracy']:.2f}% "
            f"(train {result['scratch']['train_time']:.1f} s) on "
            f"{result['scratch']['n_test']} scans",
            flush=True,
        )
    summary = {
        name: _print_summary(f"{name} accuracy", [r[name]["accuracy"] for r in per_seed])
        for name in ("finetuned", "scratch")
    }
    return {"per_seed": per_seed, "accuracy": summary}


def write_sheet(out, data_home, work, n_digits=12, n_numbers=4, seed=0):
    """Save a contact sheet of digit and number pages, read back from their PNG/JPEG files."""
    X, y = load_mnist("test", data_home=data_home)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(y), n_digits, replace=False)
    paths, labels = write_scans(work / "sheet-digits", X[chosen], y[chosen], rng)
    number_paths, number_labels = write_numbers(work / "sheet-numbers", X, y, n_numbers, rng)
    pages = [Image.open(path).convert("L") for path in (*paths, *number_paths)]
    captions = [
        f"{label} ({path.suffix[1:]}, {page.width}x{page.height})"
        for path, label, page in zip(
            (*paths, *number_paths), (*labels, *number_labels), pages, strict=True
        )
    ]
    pad, caption, columns = 12, 14, 6
    cell = max(max(page.size) for page in pages[:n_digits]) + pad
    width = max(columns * cell, max(page.width for page in pages)) + pad
    # Digit pages in a grid of cells, then number pages left to right, wrapping rows.
    places = [
        (pad + (i % columns) * cell, pad + (i // columns) * (cell + caption))
        for i in range(n_digits)
    ]
    x, top, row_height = pad, pad + -(-n_digits // columns) * (cell + caption), 0
    for page in pages[n_digits:]:
        if x + page.width + pad > width:
            x, top, row_height = pad, top + row_height + caption + pad, 0
        places.append((x, top))
        x += page.width + pad
        row_height = max(row_height, page.height)
    sheet = Image.new("L", (width, top + row_height + caption + pad), 70)
    draw = ImageDraw.Draw(sheet)
    for page, (left, top), text in zip(pages, places, captions, strict=True):
        sheet.paste(page, (left, top))
        draw.text((left, top + page.height + 1), text, fill=255)
    sheet.save(out)
    return out


def machine_facts():
    """Return the command line and the machine's processor, CPU count and torch threads."""
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "skdigits": skdigits.__version__,
    }


def _parser():
    """Return the argument parser of this script and its sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-home", type=Path, default=DATA_HOME, metavar="DIR")
    common.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the images here and keep them"
    )
    measure = argparse.ArgumentParser(add_help=False, parents=[common])
    measure.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), metavar="S", help="(default: 0 1 2)"
    )
    measure.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    predicting = argparse.ArgumentParser(add_help=False, parents=[measure])
    predicting.add_argument(
        "--model", metavar="FILE", help="model file (default: skdigits.load_pretrained())"
    )
    predicting.add_argument(
        "--pen",
        action="store_true",
        help="redraw each digit with a pen 2-15%% of its height wide (MNIST's strokes: ~12%%)",
    )

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    digits = commands.add_parser(
        "digits", parents=[predicting], help="accuracy on single-digit scans"
    )
    digits.add_argument("--n", type=int, default=2000, help="scans per seed (default: 2000)")
    numbers = commands.add_parser(
        "numbers", parents=[predicting], help="whole-number accuracy on scans of 2-5 digits"
    )
    numbers.add_argument("--n", type=int, default=500, help="numbers per seed (default: 500)")
    numbers.add_argument(
        "--no-cut",
        action="store_true",
        help="read each piece of ink as one digit (read_numbers(..., cut_touching=False))",
    )
    numbers.add_argument(
        "--touching",
        action="store_true",
        help="gaps of -0.1 to 0.1 digit heights, so that many neighbouring digits touch",
    )
    commands.add_parser(
        "finetune",
        parents=[measure],
        help="`skdigits train` on 20 scans per class, fine-tuned and from scratch",
    )
    sheet = commands.add_parser("sheet", parents=[common], help="save a contact sheet of scans")
    sheet.add_argument("--out", type=Path, required=True, metavar="PNG")
    testdata = commands.add_parser(
        "testdata", parents=[common], help="write the small scans of tests/data/scans"
    )
    testdata.add_argument("--out", type=Path, required=True, metavar="DIR")
    return parser


def main(argv=None):
    options = _parser().parse_args(argv)
    facts = machine_facts()
    print(facts["command"])
    print(
        f"{facts['processor']}, {facts['cpu_count']} CPUs, torch {facts['torch']} with "
        f"{facts['torch_threads']} threads, skdigits {facts['skdigits']}",
        flush=True,
    )
    if options.command == "testdata":
        paths = write_testdata(options.out, options.data_home)
        total = sum(path.stat().st_size for path in paths)
        for path in paths:
            print(f"{path} ({path.stat().st_size:,} bytes)")
        print(f"{len(paths)} files, {total:,} bytes")
        return
    runs = {"digits": run_digits, "numbers": run_numbers, "finetune": run_finetune}
    with tempfile.TemporaryDirectory() as temporary:
        work = options.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        if options.command == "sheet":
            print(f"contact sheet written to {write_sheet(options.out, options.data_home, work)}")
            return
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()}
        results = {**facts, "options": settings}
        results.update(runs[options.command](options, work))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
