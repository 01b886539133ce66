"""Safe model files: a fitted digit model in one file that holds data, never code.

A model file stores a fitted CNNDigitClassifier, or a fitted pipeline of a DigitNormalizer
and a CNNDigitClassifier, with optional JSON metadata from the caller.

Pickle and joblib files rebuild objects by importing and calling whatever the file names, so
loading one runs code chosen by whoever wrote it. A ``.skd`` model file holds only numbers and
text, and :func:`load` builds the model itself; nothing named in the file is ever imported,
looked up or called.

Layout (integers little-endian)::

    offset  size  field
    0       8     magic b"SKDIGITS"
    8       4     format version, uint32
    12      8     payload length in bytes, uint64
    20      32    SHA-256 of the payload
    52      n     payload: a standard safetensors blob

The payload holds the network's state dict, and in its header's ``__metadata__["skdigits"]`` a
JSON description of everything else: format name and version, library versions, the
classifier's hyperparameters, fitted attributes and training history, then (format version 2)
the pipeline, if any: its step names and the normaliser's parameters and fitted attributes,
and the caller's metadata. It is a valid safetensors file, so other tools can read the weights
after skipping the 52-byte header.

Format versions: 1 stored a classifier only. 2 adds ``"pipeline"`` (null for a classifier)
and ``"metadata"``, and describes the classifier exactly as 1 did, so one reader serves both.

Why this design:

- Weights as safetensors: a tensor is a dtype, a shape and raw bytes, and the reader checks
  every offset against the buffer. Tensors carry no device, so a model saved from a GPU loads
  anywhere.
- Everything else as JSON: ``json.loads`` builds only dicts, lists, strings, numbers, bools and
  None. The loader reads the keys it knows and checks their types; an unknown parameter or a
  value of the wrong type is an error rather than something to interpret. The two steps a
  pipeline may hold are fixed, so the file names no class: it says whether there is a
  normaliser, and the loader knows which class that is.
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
import inspect
import json
import math
import os
import secrets
import struct

import numpy as np
import safetensors.torch
import sklearn
import skorch
import torch
from safetensors import SafetensorError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from ._normalizer import DigitNormalizer

MAGIC = b"SKDIGITS"
FORMAT_NAME = "skdigits-model"
FORMAT_VERSION = 2
# Caller's metadata is for provenance and such, not data sets: beyond this it belongs in a
# file of its own. The depth bound keeps reading it far from Python's recursion limit.
MAX_METADATA_BYTES = 1_000_000
MAX_METADATA_DEPTH = 32

_HEADER = struct.Struct("<8sIQ32s")  # magic, format version, payload length, SHA-256
_METADATA_KEY = "skdigits"
_SUPPORTED = (
    "a fitted CNNDigitClassifier, or a fitted Pipeline of exactly two steps: a DigitNormalizer "
    "then a CNNDigitClassifier"
)


def save(model, path, *, metadata=None):
    """Write a fitted classifier or pipeline to ``path`` as one safe model file.

    The file holds the network weights (safetensors) and everything else as JSON; it is
    written to a temporary file and renamed, so an existing file is never left half-written.
    Read it back with :func:`skdigits.load`, which never runs code from the file, unlike
    pickle.

    Parameters
    ----------
    model : CNNDigitClassifier or Pipeline
        A fitted classifier, or a fitted :class:`~sklearn.pipeline.Pipeline` whose steps are
        a :class:`DigitNormalizer` then a :class:`CNNDigitClassifier`, under any step names
        (as :func:`~sklearn.pipeline.make_pipeline` makes). The pipeline's ``memory`` and
        ``verbose`` settings are not stored.
    path : str or path-like
        Where to write the file; an existing file is replaced only once the new one is
        completely written.
    metadata : dict, default=None
        Anything to keep with the model, such as where it came from or which images were
        held out: a dict with string keys, and values None, bool, int, float, str, list or
        dict, nested at most 32 levels deep and at most 1 MB as JSON. Tuples are stored as
        lists and numpy scalars as Python numbers. :func:`skdigits.load` returns it with
        ``return_metadata=True``.

    Raises
    ------
    TypeError
        If ``model`` is neither of the supported kinds, or ``metadata`` holds a value JSON
        cannot store.
    sklearn.exceptions.NotFittedError
        If the classifier or the normaliser is not fitted.
    ValueError
        If ``metadata`` is too large or too deeply nested, or the normaliser frames images
        in another shape than the classifier was fitted on.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> from sklearn.pipeline import make_pipeline
    >>> import skdigits
    >>> from skdigits.datasets import load_digits
    >>> X, y = load_digits()
    >>> model = make_pipeline(
    ...     skdigits.DigitNormalizer(),
    ...     skdigits.CNNDigitClassifier(channels=(8, 16), max_epochs=2, random_state=0),
    ... ).fit(X[:300], y[:300])
    >>> with TemporaryDirectory() as folder:
    ...     path = Path(folder) / "digits.skd"
    ...     skdigits.save(model, path, metadata={"trained_on": "digits 0 to 299"})
    ...     loaded, metadata = skdigits.load(path, return_metadata=True)
    >>> metadata
    {'trained_on': 'digits 0 to 299'}
    >>> bool((loaded.predict_proba(X) == model.predict_proba(X)).all())
    True
    """
    names, normalizer, clf = _split_model(model)
    check_is_fitted(clf)
    pipeline = None
    if normalizer is not None:
        check_is_fitted(normalizer)
        _check_steps_agree(normalizer, clf)
        pipeline = {"steps": names, "normalizer": _describe_normalizer(normalizer)}
    metadata = {} if metadata is None else metadata
    _check_metadata(metadata)
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in clf.net_.module_.state_dict().items()
    }
    description = {**_describe(clf), "pipeline": pipeline, "metadata": metadata}
    text = json.dumps(description, default=_plain_scalar)
    payload = safetensors.torch.save(state, metadata={_METADATA_KEY: text})
    _write_atomically(path, _pack(payload))


def load(path, device="cpu", *, return_metadata=False):
    """Return the fitted classifier or pipeline stored in a model file.

    Loading runs no code from the file: it never unpickles and never imports, looks up or
    calls anything the file names, so a model file from an untrusted source can hold a bad
    model but cannot take over the machine.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`skdigits.save` or :meth:`CNNDigitClassifier.save`.
    device : str, default="cpu"
        Torch device to predict on: "cpu", "cuda", "cuda:N", or "auto" for a CUDA GPU when
        one is available. Models saved on a GPU load on any device. The ``device``
        hyperparameter keeps its saved value and is used only when the model is refitted.
    return_metadata : bool, default=False
        Whether to return the metadata saved with the model as well.

    Returns
    -------
    model : CNNDigitClassifier or Pipeline
        The fitted model, predicting exactly as the saved one did: a classifier, or for a
        saved pipeline a :class:`~sklearn.pipeline.Pipeline` of a fitted
        :class:`DigitNormalizer` and the classifier, under the saved step names. The
        hyperparameters are the saved ones except those that held objects: a
        ``random_state`` RandomState and ``callbacks`` come back as None.
    metadata : dict
        Only with ``return_metadata=True``: the metadata given to :func:`skdigits.save`,
        as JSON gives it back (tuples as lists); ``{}`` if none was given.

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
    # Imported here because _classifier imports save from this module.
    from ._classifier import _resolve_device

    device = _resolve_device(device)
    with open(path, "rb") as file:
        data = file.read()
    try:
        version, payload = _unpack(data)
        state, description = _read_payload(payload)
        _check_format(description, version)
        if version == 1:
            # Version 1 stored a classifier and nothing else.
            pipeline, metadata = None, {}
        else:
            pipeline = _field(description, "pipeline", _is_dict_or_none, "null or an object")
            metadata = _stored_metadata(description)
        # The normaliser is read first: checking its fields costs nothing, building the
        # classifier's network does.
        steps = None if pipeline is None else _restore_pipeline_steps(pipeline)
        clf = _restore_classifier(description, state, device)
        model = clf if steps is None else _assemble_pipeline(*steps, clf)
    except ValueError as error:
        raise ValueError(f"cannot load {os.fspath(path)!r}: {error}") from None
    return (model, metadata) if return_metadata else model


def _split_model(model):
    """Return ``(step names, normaliser, classifier)``; the first two are None for a classifier.

    Raises a TypeError for any other kind of model.
    """
    from ._classifier import CNNDigitClassifier  # imported here: _classifier imports us

    if isinstance(model, CNNDigitClassifier):
        return None, None, model
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        if (
            len(steps) == 2
            and isinstance(steps[0], DigitNormalizer)
            and isinstance(steps[1], CNNDigitClassifier)
        ):
            return [name for name, _ in model.steps], steps[0], steps[1]
        kinds = ", ".join(type(step).__name__ for step in steps)
        raise TypeError(f"skdigits can save {_SUPPORTED}; got a Pipeline of {kinds}")
    raise TypeError(f"skdigits can save {_SUPPORTED}; got a {type(model).__name__}")


def _check_steps_agree(normalizer, clf):
    """Raise a ValueError unless the classifier takes the images the normaliser makes."""
    if tuple(normalizer.image_shape_) != tuple(clf.image_shape_):
        raise ValueError(
            f"the DigitNormalizer's image_shape_ {tuple(normalizer.image_shape_)} differs from "
            f"the CNNDigitClassifier's image_shape_ {tuple(clf.image_shape_)}, so the "
            "classifier cannot predict the images the normalizer makes; fit the pipeline as "
            "a whole"
        )


def _describe(estimator):
    """Return the JSON-ready description of the classifier: everything but the weights."""
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


def _describe_normalizer(normalizer):
    """Return the JSON-ready parameters and fitted attributes of a DigitNormalizer."""
    return {
        "params": normalizer.get_params(),
        "attributes": {
            "image_shape_": normalizer.image_shape_,
            "box_": normalizer.box_,
            "centering_": normalizer.centering_,
            "center_": normalizer.center_,
            "ink_": normalizer.ink_,
            "framed_": normalizer.framed_,
        },
    }


def _check_metadata(metadata):
    """Raise a TypeError or ValueError unless ``metadata`` can be saved and read back."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict; got a {type(metadata).__name__}")
    _check_json_value(metadata, "metadata", depth=1)
    size = len(json.dumps(metadata, default=_plain_scalar).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata takes {size:,} bytes as JSON, more than the {MAX_METADATA_BYTES:,} a "
            "model file keeps; store large data in a file of its own and record its name"
        )


def _check_json_value(value, where, depth):
    """Raise unless ``value``, found at ``where``, is JSON that reads back as it was written.

    A TypeError for a value JSON cannot store; a ValueError for nesting deeper than
    ``MAX_METADATA_DEPTH`` or an integer the loader rejects (beyond 64 bits).
    """
    if isinstance(value, np.generic):
        # Stored as the Python scalar it stands for, as _plain_scalar writes it.
        value = value.item()
    if isinstance(value, (dict, list, tuple)) and depth > MAX_METADATA_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_METADATA_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r:.80}; metadata keys must be str")
            _check_json_value(item, f"{where}[{key!r:.80}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, int):
        if not _fits_int64(value):
            raise ValueError(f"{where} is {value}, an integer beyond 64 bits; store it as str")
    elif value is not None and not isinstance(value, (str, float)):
        raise TypeError(
            f"{where} is a {type(value).__name__}, which a model file cannot store; use None, "
            "bool, int, float, str, list or dict (an array: its .tolist())"
        )


def _stored_metadata(description):
    """Return the caller's metadata held in ``description``, checking its depth."""
    metadata = _field(description, "metadata", _is_dict, "an object")
    _check_json_value(metadata, "'metadata'", depth=1)
    return metadata


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
    """Return the format version and payload of a model file's bytes, once checked."""
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
    return version, payload


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
    if not _fits_int64(value):
        raise ValueError(f"its description holds an integer out of range: {digits:.40}")
    return value


def _check_format(description, version):
    """Raise a ValueError unless the description is this format, in the header's version."""
    _field(description, "format", lambda name: name == FORMAT_NAME, repr(FORMAT_NAME))
    _field(
        description,
        "format_version",
        lambda stated: stated == version,
        f"{version}, the version in the file's header",
    )


def _restore_classifier(description, state, device):
    """Return the fitted CNNDigitClassifier that ``description`` and ``state`` describe."""
    from ._classifier import CNNDigitClassifier  # imported here: _classifier imports us

    stored_params = _field(description, "params", _is_dict, "an object")
    checks = {
        "channels": (_is_channels, "a non-empty list of positive ints"),
        "image_shape": (_is_image_shape_param, "null or a list of two ints"),
    }
    clf = CNNDigitClassifier(**_params(stored_params, CNNDigitClassifier(), checks))
    clf._validate_params()
    attributes = _field(description, "attributes", _is_dict, "an object")
    for name, value in _fitted_attributes(attributes).items():
        setattr(clf, name, value)
    clf.net_ = _restore_net(clf, state, device)
    return clf


def _restore_pipeline_steps(stored):
    """Return the step names and the fitted DigitNormalizer a pipeline's description holds."""
    names = _field(stored, "steps", _is_step_names, "two distinct names of pipeline steps")
    described = _field(stored, "normalizer", _is_dict, "an object")
    # The constraints of DigitNormalizer check the other parameters; these two they would
    # let through (any list, a bool as box).
    checks = {
        "image_shape": (_is_shape_or_none, "null or a list of two positive ints"),
        "box": (_is_positive_int_or_none, "null or a positive int"),
    }
    try:
        stored_params = _field(described, "params", _is_dict, "an object")
        normalizer = DigitNormalizer(**_params(stored_params, DigitNormalizer(), checks))
        normalizer._validate_params()
        attributes = _field(described, "attributes", _is_dict, "an object")
        for name, value in _normalizer_attributes(attributes).items():
            setattr(normalizer, name, value)
    except ValueError as error:
        raise ValueError(f"its DigitNormalizer: {error}") from None
    return names, normalizer


def _assemble_pipeline(names, normalizer, clf):
    """Return the Pipeline of ``normalizer`` then ``clf``, once they are checked to agree."""
    _check_steps_agree(normalizer, clf)
    return Pipeline([(names[0], normalizer), (names[1], clf)])


def _params(stored, estimator, checks):
    """Return the constructor arguments of ``estimator`` in ``stored``, lists as tuples.

    ``checks`` maps the parameters that need more than to be a JSON scalar (those holding
    tuples, among others) to their check and a description of what it expects.
    """
    known = estimator.get_params()
    unknown = sorted(set(stored) - set(known))
    if unknown:
        raise ValueError(
            f"unknown parameters {unknown}; the file was modified or written by another "
            "version of skdigits"
        )
    # Parameters missing from the file keep their defaults, as in files written before the
    # parameter existed; for the classifier, the check of the weights catches any difference
    # that matters.
    params = {}
    for name in stored:
        check, expected = checks.get(name, (_is_scalar, "a number, string, bool or null"))
        value = _field(stored, name, check, expected)
        # JSON has no tuples: parameters that hold them come back as lists.
        params[name] = tuple(value) if isinstance(value, list) else value
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


def _normalizer_attributes(stored):
    """Return the fitted attributes of a DigitNormalizer in ``stored``, in their types."""
    shape = tuple(_field(stored, "image_shape_", _is_shape, "a list of two positive ints"))
    box = _field(
        stored,
        "box_",
        lambda value: _is_positive_int(value) and value <= min(shape),
        f"a positive int that fits in the frame {shape}",
    )
    center = _field(
        stored,
        "center_",
        lambda point: _is_point_in(point, shape),
        f"two finite numbers within the frame {shape}",
    )
    return {
        "image_shape_": shape,
        "box_": box,
        "centering_": _field(
            stored, "centering_", lambda c: c in ("mass", "box"), '"mass" or "box"'
        ),
        "center_": tuple(float(coordinate) for coordinate in center),
        "ink_": _field(stored, "ink_", lambda ink: ink in ("dark", "light"), '"dark" or "light"'),
        "framed_": _field(stored, "framed_", lambda framed: isinstance(framed, bool), "a bool"),
    }


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


def _fits_int64(value):
    return -(2**63) <= value < 2**63


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_positive_int(value):
    return _is_int(value) and value > 0


def _is_positive_int_or_none(value):
    return value is None or _is_positive_int(value)


def _is_count(value):
    return _is_int(value) and value >= 0


def _is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


def _is_dict(value):
    return isinstance(value, dict)


def _is_dict_or_none(value):
    return value is None or isinstance(value, dict)


def _is_channels(value):
    return isinstance(value, list) and len(value) > 0 and all(map(_is_positive_int, value))


def _is_image_shape_param(value):
    return value is None or (isinstance(value, list) and all(map(_is_int, value)))


def _is_shape(value):
    return isinstance(value, list) and len(value) == 2 and all(map(_is_positive_int, value))


def _is_shape_or_none(value):
    return value is None or _is_shape(value)


def _is_point_in(value, shape):
    """Return whether ``value`` is a list of two finite numbers within a frame of ``shape``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(
            _is_number(c) and math.isfinite(c) and 0 <= c <= side
            for c, side in zip(value, shape, strict=True)
        )
    )


def _is_step_names(value):
    """Return whether ``value`` is a list of two names a Pipeline accepts for its steps."""
    # Pipeline checks its names only in fit; a loaded pipeline must already be valid.
    reserved = inspect.signature(Pipeline).parameters
    return (
        isinstance(value, list)
        and len(value) == 2
        and value[0] != value[1]
        and all(
            isinstance(name, str) and name and "__" not in name and name not in reserved
            for name in value
        )
    )


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
