"""Cost of loading model files, honest and hostile: time and memory per file.

Writes a set of model files into a temporary folder: real ones (the default classifier, a
large network, the bundled pretrained pipeline) and files crafted as an attacker would (with
safetensors and json directly, a valid checksum, and sizes meant to exhaust the loader).
Each is then loaded by ``skdigits.load`` in a fresh process, which reports the time load
took, the time a plain read of the file takes, and how much its peak resident memory grew
(Linux only: it reads /proc/self/status).

    python benchmarks/model_files.py

The figures are in docs/persistence.md.
"""

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import safetensors.torch
from sklearn.datasets import load_digits

import skdigits

# Run in a fresh process per file, so each peak-memory figure is that file's alone.
PROBE = r"""
import json, os, sys, time
import skdigits

def kilobytes(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))

path = sys.argv[1]
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # resets the peak resident size (VmHWM) to the current one
before = kilobytes("VmRSS:")
start = time.perf_counter()
try:
    skdigits.load(path)
    outcome = "loaded"
except (ValueError, OSError) as error:
    outcome = str(error).split(": ", 1)[1][:70]
took = time.perf_counter() - start
grown = kilobytes("VmHWM:") - before
start = time.perf_counter()
with open(path, "rb") as file:
    size = len(file.read()) if os.path.isfile(path) else 0
read = time.perf_counter() - start
result = {"size": size, "read": read, "load": took, "grown_kb": grown, "outcome": outcome}
print(json.dumps(result))
"""


def write_crafted(path, tensors, description):
    """Write a model file as anyone can: any tensors and description, a valid checksum."""
    text = json.dumps(description)
    draft = safetensors.torch.save(tensors)
    data = draft[8 + struct.unpack_from("<Q", draft)[0] :]
    header = {
        "format": "skdigits-model",
        "format_version": "3",
        "sha256": hashlib.sha256(data + text.encode()).hexdigest(),
        "skdigits": text,
    }
    path.write_bytes(safetensors.torch.save(tensors, metadata=header))


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def main():
    X, y = load_digits(return_X_y=True)
    folder = Path(tempfile.mkdtemp())
    files = {}

    clf = skdigits.CNNDigitClassifier(max_epochs=1, random_state=0).fit(X, y)
    files["default classifier (8x8 digits)"] = folder / "default.skd"
    clf.save(files["default classifier (8x8 digits)"])
    big = skdigits.CNNDigitClassifier(
        channels=(256, 512, 1024), hidden_units=4096, max_epochs=1, random_state=0
    ).fit(X[:100], y[:100])
    files["large network (3 stages to 1024 channels)"] = folder / "large.skd"
    big.save(files["large network (3 stages to 1024 channels)"])
    pretrained = Path(skdigits.__file__).parent / "data" / "pretrained.skd"
    files["bundled pretrained pipeline"] = pretrained

    tensors, state = clf.to_state()
    state = json.loads(json.dumps(state))  # plain JSON, as a file holds it

    def crafted(name, change, change_tensors=None):
        description = json.loads(
            json.dumps({"versions": {}, "classifier": state, "pipeline": None, "metadata": {}})
        )
        change(description["classifier"])
        weights = dict(tensors)
        if change_tensors is not None:
            change_tensors(weights)
        files[name] = folder / f"crafted-{len(files)}.skd"
        write_crafted(files[name], weights, description)

    crafted("a million stages", lambda c: c["params"].update(channels=[1] * 1_000_000))
    crafted(
        "a 40000x40000 image frame",
        lambda c: c["attributes"].update(image_shape_=[40000, 40000], n_features_in_=40000**2),
    )
    crafted("history nested 900 deep", lambda c: c["attributes"].update(history_=nested(900)))
    crafted("history of 100,001 epochs", lambda c: c["attributes"].update(history_=[{}] * 100_001))
    crafted(
        "7 MB of padding in the JSON",
        lambda c: c["params"].update(device="cpu" + " " * 7_000_000),
    )
    crafted(
        "NaN weights",
        lambda c: None,
        lambda t: t.update(**{"head.4.weight": t["head.4.weight"] * float("nan")}),
    )
    files["header announcing 1 TB"] = folder / "huge-header.skd"
    files["header announcing 1 TB"].write_bytes(struct.pack("<Q", 2**40) + b"{}")
    files["symbolic link to /dev/zero"] = folder / "zero.skd"
    os.symlink("/dev/zero", files["symbolic link to /dev/zero"])

    print("| file | size | read | load | peak memory growth | outcome |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, path in files.items():
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"| {name} | {r['size'] / 1e6:.2f} MB | {r['read'] * 1e3:.1f} ms | "
            f"{r['load'] * 1e3:.1f} ms | {r['grown_kb'] / 1e3:.1f} MB | {r['outcome']} |"
        )


if __name__ == "__main__":
    main()
