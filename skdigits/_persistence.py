"""Safe model files: a fitted CNNDigitClassifier in one file that holds data, never code.

Pickle and joblib files rebuild objects by importing and calling whatever the file names, so
loading one runs code chosen by whoever wrote it. A ``.skd`` model file holds only numbers and
text, and :func:`load` builds the classifier itself; nothing named in the file is ever imported,
looked up or called.

Layout (integers little-endian)::

    offset  size  field
    0       8     magic b"SKDIGITS"
    8       4     format version, uint32
    12      8     payload length in bytes, uint64
    20      32    SHA-256 of the payload
    52      n     payload: a standard safetensors blob

The payload holds the network's state dict, and in its header's ``__metadata__["skdigits"]`` a
JSON description of everything else: format name and version, library versions,
hyperparameters, fitted attributes and the training history. It is a valid safetensors file,
so other tools can read the weights after skipping the 52-byte header.

Why this design:

- Weights as safetensors: a tensor is a dtype, a shape and raw bytes, and the reader checks
  every offset against the buffer. Tensors carry no device, so a model saved from a GPU loads
  anywhere.
- Everything else as JSON: ``json.loads`` builds only dicts, lists, strings, numbers, bools and
  None. The loader reads the keys it knows and checks their types; an unknown parameter or a
  value of the wrong type is an error rather than something to interpret.
- The version is read before anything else the layout could change, so a file from a newer
  skdigits says "upgrade skdigits" instead of failing to parse.
- The SHA-256 and the length detect any flipped byte or truncation before anything is parsed.
  They are no signature (anyone can write a file with a valid checksum), which is why the
  parsing never trusts the content.
- The weights are checked against the network the hyperparameters describe before that network
  is built, so a crafted file cannot make the loader allocate a network larger than the
  weights it carries.
- The file is written to a temporary file in the same directory and renamed onto the target, so
  a failed or interrupted save never leaves a half-written model behind.
"""

import hashlib
import json
import os
import secrets
import struct

import numpy as np
import safetensors.torch
import sklearn
import skorch
import torch
from safetensors import SafetensorError
from skorch.history import History

MAGIC = b"SKDIGITS"
FORMAT_NAME = "skdigits-model"
FORMAT_VERSION = 1

_HEADER = struct.Struct("<8sIQ32s")  # magic, format version, payload length, SHA-256
_METADATA_KEY = "skdigits"


def save_model(estimator, path):
    """Write a fitted classifier to ``path`` as one safe model file.

    Parameters
    ----------
    estimator : CNNDigitClassifier
        A fitted classifier.
    path : str or path-like
        Where to write the file; an existing file is replaced only once the new one is
        completely written.
    """
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in estimator.net_.module_.state_dict().items()
    }
    description = json.dumps(_describe(estimator), default=_plain_scalar)
    payload = safetensors.torch.save(state, metadata={_METADATA_KEY: description})
    _write_atomically(path, _pack(payload))


def load(path, device="cpu"):
    """Return the fitted classifier stored in a model file written by ``save``.

    Loading runs no code from the file: it never unpickles and never imports, looks up or
    calls anything the file names, so a model file from an untrusted source can hold a bad
    model but cannot take over the machine.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`CNNDigitClassifier.save`.
    device : str, default="cpu"
        Torch device to predict on: "cpu", "cuda", "cuda:N", or "auto" for a CUDA GPU when
        one is available. Models saved on a GPU load on any device. The ``device``
        hyperparameter keeps its saved value and is used only when the model is refitted.

    Returns
    -------
    clf : CNNDigitClassifier
        The fitted classifier, predicting exactly as the saved one did, with the same
        hyperparameters except those that held objects: a ``random_state`` RandomState and
        ``callbacks`` come back as None.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a skdigits model file, is truncated, corrupted or modified, was
        written by a newer skdigits, or describes a model this version cannot build.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> from sklearn.datasets import load_digits
    >>> import skdigits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = skdigits.CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0)
    >>> clf = clf.fit(X[:300], y[:300])
    >>> with TemporaryDirectory() as folder:
    ...     path = Path(folder) / "digits.skd"
    ...     clf.save(path)
    ...     loaded = skdigits.load(path)
    CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0)
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    # Imported here because _classifier imports save_model from this module.
    from ._classifier import CNNDigitClassifier, _resolve_device

    device = _resolve_device(device)
    with open(path, "rb") as file:
        data = file.read()
    try:
        state, description = _read_payload(_unpack(data))
        _check_format(description)
        stored_params = _field(description, "params", _is_dict, "an object")
        clf = CNNDigitClassifier(**_params(stored_params, CNNDigitClassifier().get_params()))
        clf._validate_params()
        attributes = _field(description, "attributes", _is_dict, "an object")
        for name, value in _fitted_attributes(attributes).items():
            setattr(clf, name, value)
        clf.net_ = _restore_net(clf, state, device)
    except ValueError as error:
        raise ValueError(f"cannot load {os.fspath(path)!r}: {error}") from None
    return clf


def _describe(estimator):
    """Return the JSON-ready description of everything but the weights."""
    from . import __version__  # imported here: the package imports this module first

    params = estimator.get_params()
    # Objects, not settings: a RandomState (its state) and callbacks (code) cannot be data,
    # and the fitted weights no longer depend on them. A refit of the loaded model uses None:
    # fresh seeds, as a shared RandomState gives, and no extra callbacks.
    if isinstance(params["random_state"], np.random.RandomState):
        params["random_state"] = None
    if params.get("callbacks"):
        params["callbacks"] = None
    attributes = {
        "classes_": {
            "dtype": estimator.classes_.dtype.str,
            "values": estimator.classes_.tolist(),
        },
        "n_features_in_": estimator.n_features_in_,
        "image_shape_": estimator.image_shape_,
        "pixel_range_": estimator.pixel_range_,
        "best_epoch_": estimator.best_epoch_,
        "n_iter_": estimator.n_iter_,
        "history_": list(estimator.history_),
    }
    if hasattr(estimator, "feature_names_in_"):
        attributes["feature_names_in_"] = estimator.feature_names_in_.tolist()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": {
            "skdigits": __version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "params": params,
        "attributes": attributes,
    }


def _plain_scalar(value):
    """Return a numpy scalar as the Python scalar JSON can store (a ``json.dumps`` hook)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store a {type(value).__name__} in a skdigits model file")


def _pack(payload):
    """Return the container bytes: the header, with version and checksum, then ``payload``."""
    digest = hashlib.sha256(payload).digest()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), digest) + payload


def _unpack(data):
    """Return the payload of a model file's bytes, once its header and checksum are checked."""
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError(
            f"not a skdigits model file: it starts with {data[: len(MAGIC)]!r}, not {MAGIC!r}. "
            "A pickle or joblib file must be loaded with joblib.load, and only if you trust "
            "whoever wrote it"
        )
    if len(data) < _HEADER.size:
        raise ValueError(f"the file is truncated: {len(data)} bytes, shorter than its header")
    _, version, length, digest = _HEADER.unpack_from(data)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"the file has format version {version}, but this skdigits reads format versions "
            f"up to {FORMAT_VERSION}; upgrade skdigits to load it"
        )
    if version < 1:
        raise ValueError(f"format version {version} does not exist; the file is corrupted")
    payload = data[_HEADER.size :]
    if len(payload) != length:
        raise ValueError(
            f"the file is truncated or corrupted: its header announces {length} bytes of "
            f"model, but {len(payload)} follow"
        )
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError(
            "checksum mismatch: the file is corrupted or was modified after it was saved"
        )
    return payload


def _read_payload(payload):
    """Return the state dict and the decoded JSON description held in a safetensors payload."""
    try:
        state = safetensors.torch.load(payload)
    except SafetensorError as error:
        raise ValueError(f"its weights cannot be read: {error}") from None
    # safetensors has validated the header: an 8-byte length, then that much JSON.
    (header_length,) = struct.unpack_from("<Q", payload)
    try:
        header = json.loads(payload[8 : 8 + header_length])
        text = header.get("__metadata__", {}).get(_METADATA_KEY)
        if text is None:
            raise ValueError("it holds weights but no skdigits description")
        description = json.loads(text, parse_int=_parse_int64)
    except RecursionError:
        raise ValueError("its description is nested too deeply to be a model") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"its description is not valid JSON: {error}") from None
    if not isinstance(description, dict):
        raise ValueError("its description is not a JSON object")
    return state, description


def _parse_int64(digits):
    """Return the int JSON spells as ``digits``, if a 64-bit integer can hold it."""
    # Every count, shape and label of a model fits; a larger one could only overflow later,
    # deep inside numpy or torch, with a less helpful error.
    value = int(digits)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"its description holds an integer out of range: {digits:.40}")
    return value


def _check_format(description):
    """Raise a ValueError unless the description says it is this format, in this version."""
    _field(description, "format", lambda name: name == FORMAT_NAME, repr(FORMAT_NAME))
    _field(
        description, "format_version", lambda version: version == FORMAT_VERSION, FORMAT_VERSION
    )


def _params(stored, known):
    """Return the constructor arguments in ``stored``, with JSON lists back as tuples."""
    unknown = sorted(set(stored) - set(known))
    if unknown:
        raise ValueError(
            f"unknown parameters {unknown}; the file was modified or written by another "
            "version of skdigits"
        )
    # JSON has no tuples: these two come back from lists.
    tuples = {
        "channels": (_is_channels, "a non-empty list of positive ints"),
        "image_shape": (_is_image_shape_param, "null or a list of two ints"),
    }
    # Parameters missing from the file keep their defaults, as in files written before the
    # parameter existed; the check of the weights catches any difference that matters.
    params = {}
    for name in stored:
        if name in tuples:
            value = _field(stored, name, *tuples[name])
            params[name] = None if value is None else tuple(value)
        else:
            params[name] = _field(stored, name, _is_scalar, "a number, string, bool or null")
    return params


def _fitted_attributes(stored):
    """Return the fitted attributes in ``stored``, in the types the classifier keeps them."""
    attributes = {
        "classes_": _classes(_field(stored, "classes_", _is_dict, "an object")),
        "n_features_in_": _field(stored, "n_features_in_", _is_positive_int, "a positive int"),
        "image_shape_": tuple(
            _field(stored, "image_shape_", _is_shape, "a list of two positive ints")
        ),
        "pixel_range_": tuple(
            _field(stored, "pixel_range_", _is_pixel_range, "a list of two numbers")
        ),
        "best_epoch_": _field(stored, "best_epoch_", _is_count, "a non-negative int"),
        "n_iter_": _field(stored, "n_iter_", _is_count, "a non-negative int"),
        "history_": History(_field(stored, "history_", _is_list_of_dicts, "a list of objects")),
    }
    if "feature_names_in_" in stored:
        names = _field(stored, "feature_names_in_", _is_list_of_strings, "a list of strings")
        attributes["feature_names_in_"] = np.asarray(names, dtype=object)
    return attributes


def _classes(stored):
    """Return the class labels as an array of the dtype kind they were fitted with."""
    dtype_name = _field(stored, "dtype", lambda name: isinstance(name, str), "a dtype name")
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        raise ValueError(f"'dtype' {dtype_name!r:.80} is not a numpy dtype") from None
    checks = {
        "b": lambda label: isinstance(label, bool),
        "i": _is_int,
        "u": lambda label: _is_int(label) and label >= 0,
        "f": _is_number,
        "U": lambda label: isinstance(label, str),
        "O": lambda label: isinstance(label, (str, int, float)),
    }
    if dtype.kind not in checks:
        raise ValueError(f"class labels of dtype {dtype} are not supported")
    check = checks[dtype.kind]
    values = _field(
        stored, "values", lambda v: isinstance(v, list) and all(map(check, v)), f"{dtype} labels"
    )
    try:
        # The width of a string dtype is a size request; the labels themselves give the real
        # width.
        return np.array(values, dtype=str if dtype.kind == "U" else dtype)
    except OverflowError:
        raise ValueError(f"class labels {values!r:.80} do not fit dtype {dtype}") from None


def _restore_net(clf, state, device):
    """Return the classifier's skorch net, initialized on ``device`` with the stored weights."""
    net = clf._new_net(device)
    _check_weights_fit(net, state)
    # Random initial weights are overwritten at once; drawing them must not move the user's
    # global torch seed.
    with torch.random.fork_rng(devices=[]):
        net.initialize()
    net.module_.load_state_dict(state)
    # skorch switches to eval mode for each prediction; a loaded model is ready for one.
    net.module_.eval()
    net.history = clf.history_
    return net


def _check_weights_fit(net, state):
    """Raise a ValueError unless ``state`` has exactly the tensors of ``net``'s network."""
    # On the meta device the network has shapes but no memory, so this costs nothing even
    # when the hyperparameters ask for an enormous network.
    try:
        with torch.device("meta"):
            module = net.module(**net.get_params_for("module"))
    except RuntimeError as error:
        raise ValueError(
            f"its parameters describe a network that cannot be built: {error}"
        ) from None
    expected = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    differing = sorted(
        name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name)
    )
    if differing:
        raise ValueError(
            f"its weights do not fit the network its parameters describe (tensors "
            f"{differing[:5]} are missing, extra or of another shape)"
        )


def _field(mapping, key, is_valid, expected):
    """Return ``mapping[key]``, raising a ValueError if it is missing or not ``expected``."""
    if key not in mapping:
        raise ValueError(f"its description lacks {key!r}")
    value = mapping[key]
    if not is_valid(value):
        raise ValueError(f"{key!r} should be {expected}; got {value!r:.80}")
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_positive_int(value):
    return _is_int(value) and value > 0


def _is_count(value):
    return _is_int(value) and value >= 0


def _is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


def _is_dict(value):
    return isinstance(value, dict)


def _is_channels(value):
    return isinstance(value, list) and len(value) > 0 and all(map(_is_positive_int, value))


def _is_image_shape_param(value):
    return value is None or (isinstance(value, list) and all(map(_is_int, value)))


def _is_shape(value):
    return isinstance(value, list) and len(value) == 2 and all(map(_is_positive_int, value))


def _is_pixel_range(value):
    return isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))


def _is_list_of_dicts(value):
    return isinstance(value, list) and all(map(_is_dict, value))


def _is_list_of_strings(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _write_atomically(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    Renaming within one directory is atomic, so ``path`` holds either its old content or all
    of ``data``, even if the process dies mid-write.
    """
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    # os.open rather than tempfile: mkstemp makes files only their owner can read, while a
    # model file should get the usual permissions (0o666 less the umask). O_EXCL never
    # reuses an existing file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
