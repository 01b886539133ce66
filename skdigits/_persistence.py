"""Model files: plain data (tensors and JSON) to and from disk, bounded and checked.

This module only moves data: the estimators convert themselves to tensors and JSON-able
dicts (``to_state``) and back (``from_state``), and :mod:`skdigits._model_files` decides
what a model is made of. Nothing here imports an estimator.

A model file is a standard safetensors file (any safetensors tool opens it): the network's
weights as tensors, and in the header's ``__metadata__``::

    "format"          "skdigits-model"
    "format_version"  "3"
    "sha256"          SHA-256 of the tensor data followed by the "skdigits" text, in hex
    "skdigits"        JSON: {"versions", "classifier", "pipeline", "metadata"}

Reading trusts nothing, and costs bounded time and memory whatever the file holds:

- Only a regular file of at most ``MAX_FILE_BYTES`` is opened (not a device such as
  ``/dev/zero``, even through a symbolic link), and its first 8 bytes and header (at most
  ``MAX_HEADER_BYTES``) are read and checked before anything else: the format name, the
  version, the number of tensors and the data size they declare, which must be the file's.
- Only then is the rest read, checked against the SHA-256 (any flipped byte or truncation),
  and parsed by the safetensors library, which checks every tensor's offsets.
- The JSON may nest at most ``MAX_DEPTH`` levels (the caller's metadata at most
  ``MAX_METADATA_DEPTH``) and its integers must fit 64 bits. ``json.loads`` builds only
  dicts, lists, strings, numbers, bools and None; nothing named in a file is ever imported,
  looked up or called, unlike pickle.

Writing goes to a temporary file in the target's directory, locked while it is written,
then renamed onto the target: the target holds its old content or all of the new, even if
the process is killed. A save keeps an existing file's permission bits, writes through a
symbolic link to its target, refuses directories and devices, and removes the temporary
files of killed saves (those no living writer holds locked).

Formats 1 and 2 (skdigits 0.1) put a 52-byte header (magic ``SKDIGITS``, version, length,
SHA-256) in front of the safetensors data; they are still read.
"""

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import struct

import numpy as np
import safetensors.torch
import sklearn
import skorch
import torch
from safetensors import SafetensorError

from ._version import __version__

FORMAT_NAME = "skdigits-model"
FORMAT_VERSION = 3
# The largest network the estimators' bounds allow takes about 400 MB of float32 weights.
MAX_FILE_BYTES = 1 << 30
# A description is a few kilobytes plus the history and the caller's metadata.
MAX_HEADER_BYTES = 8 << 20
MAX_TENSORS = 1000
MAX_DEPTH = 40
# Caller's metadata is for provenance and such, not data sets: beyond this it belongs in a
# file of its own.
MAX_METADATA_BYTES = 1_000_000
MAX_METADATA_DEPTH = 32

# Formats 1 and 2: magic, format version, payload length, SHA-256, then the payload.
LEGACY_MAGIC = b"SKDIGITS"
_LEGACY_HEADER = struct.Struct("<8sIQ32s")
_DESCRIPTION_KEY = "skdigits"
_NOT_A_MODEL = (
    "not a skdigits model file{reason}. A pickle or joblib file must be loaded with "
    "joblib.load, and only if you trust whoever wrote it"
)


class ModelFile:
    """What a model file holds: the classifier's tensors and state, the pipeline, metadata.

    Attributes
    ----------
    tensors : dict of str to torch.Tensor
    classifier : dict
        The classifier's state, as its ``to_state`` gave it.
    pipeline : dict or None
        ``{"steps": [name, name], "normalizer": state}`` for a pipeline, else None.
    metadata : dict
        The caller's metadata.
    version : int
        The file's format version.
    """

    def __init__(self, tensors, classifier, pipeline, metadata, version):
        self.tensors = tensors
        self.classifier = classifier
        self.pipeline = pipeline
        self.metadata = metadata
        self.version = version


def write_model_file(path, tensors, classifier, pipeline=None, metadata=None):
    """Write a model file to ``path``: tensors and JSON-able state, atomically.

    Parameters
    ----------
    path : str or path-like
        Where to write; see :func:`check_model_path`.
    tensors : dict of str to torch.Tensor
        The classifier's weights, on the CPU.
    classifier : dict
        The classifier's state.
    pipeline : dict or None
        The pipeline's step names and the normaliser's state, if any.
    metadata : dict or None
        The caller's metadata: JSON values, checked here.
    """
    target = check_model_path(path)
    metadata = {} if metadata is None else metadata
    check_metadata(metadata)
    description = {
        "versions": {
            "skdigits": __version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "classifier": classifier,
        "pipeline": pipeline,
        "metadata": metadata,
    }
    text = json.dumps(description, default=_plain_scalar, allow_nan=True)
    # The tensor data does not depend on the header's metadata, so a first serialisation
    # gives the bytes the checksum covers.
    draft = safetensors.torch.save(tensors)
    data = draft[8 + struct.unpack_from("<Q", draft)[0] :]
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "sha256": _digest(data, text),
        _DESCRIPTION_KEY: text,
    }
    _write_atomically(target, safetensors.torch.save(tensors, metadata=header))


def read_model_file(path):
    """Return the :class:`ModelFile` at ``path``, once every bound and checksum is checked.

    Raises a ValueError naming the problem for anything but a model file of a format this
    version reads (FileNotFoundError if there is no file).
    """
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(_NOT_A_MODEL.format(reason=" but a directory, device or pipe"))
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"the file takes {info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} "
                "a model file may"
            )
        start = file.read(8)
        if start == LEGACY_MAGIC:
            return _read_legacy(file, info.st_size)
        header_bytes, data_size = _read_header(file, start, info.st_size)
        header = _parse_header(header_bytes, data_size)
        rest = file.read(data_size + 1)
    if len(rest) != data_size:
        raise ValueError("the file changed while it was read")
    meta = header["__metadata__"]
    text = meta.get(_DESCRIPTION_KEY)
    if not isinstance(text, str) or not isinstance(meta.get("sha256"), str):
        raise ValueError("its header lacks the skdigits description or its checksum")
    if meta["sha256"] != _digest(rest, text):
        raise ValueError(
            "checksum mismatch: the file is corrupted or was modified after it was saved"
        )
    tensors = _load_tensors(start + header_bytes + rest)
    description = _parse_description(text)
    for key in ("versions", "classifier", "pipeline", "metadata"):
        if key not in description:
            raise ValueError(f"its description lacks {key!r}")
    return _model_file(tensors, description, FORMAT_VERSION)


def check_model_path(path):
    """Return the path a model file for ``path`` is written to, or raise why it cannot be.

    Through symbolic links, the file they point to is written (a dangling link creates its
    target). Directories, devices, pipes and sockets are refused, as is a missing folder.

    Parameters
    ----------
    path : str or path-like
        Where a model file is to be saved.

    Returns
    -------
    target : str
        The absolute path of the file that saving writes.

    Raises
    ------
    IsADirectoryError
        If ``path`` is a directory.
    FileNotFoundError
        If the folder to write in does not exist.
    ValueError
        If ``path`` is a device, pipe or socket.

    Examples
    --------
    >>> from skdigits import check_model_path
    >>> check_model_path("/dev/null")
    Traceback (most recent call last):
    ...
    ValueError: cannot save a model to '/dev/null': it is a device, pipe or socket, not a \
regular file
    """
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"cannot save a model to {os.fspath(path)!r}: it is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(
            f"cannot save a model to {os.fspath(path)!r}: it is a device, pipe or socket, not "
            "a regular file"
        )
    if not os.path.isdir(os.path.dirname(target)):
        raise FileNotFoundError(
            f"cannot save a model to {os.fspath(path)!r}: the folder "
            f"{os.path.dirname(target)!r} does not exist"
        )
    return target


def check_metadata(metadata):
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


def _digest(data, text):
    """Return the hex SHA-256 of the tensor data followed by the description text."""
    digest = hashlib.sha256(data)
    digest.update(text.encode())
    return digest.hexdigest()


def _read_header(file, start, size):
    """Return the safetensors header's bytes and the data size it leaves, checked for size."""
    if len(start) < 8:
        raise ValueError(_NOT_A_MODEL.format(reason=f": it holds only {len(start)} bytes"))
    (length,) = struct.unpack("<Q", start)
    if length > min(MAX_HEADER_BYTES, size - 8):
        raise ValueError(
            _NOT_A_MODEL.format(
                reason=f": its first 8 bytes announce a {length:,}-byte header, which "
                f"{'exceeds the file' if length > size - 8 else 'is beyond any model'}"
            )
        )
    header_bytes = file.read(length)
    if len(header_bytes) != length:
        raise ValueError("the file changed while it was read")
    return header_bytes, size - 8 - length


def _parse_header(header_bytes, data_size):
    """Return the safetensors header as JSON, checked to be a skdigits model's."""
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(
            "its header is not valid JSON: the file is corrupted or was modified, or is not "
            "a skdigits model file"
        ) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(_NOT_A_MODEL.format(reason=": its header does not name the format"))
    version = meta.get("format_version")
    if not (isinstance(version, str) and version.isdigit() and len(version) < 10):
        raise ValueError(f"its format version {version!r:.40} is not a number")
    if int(version) > FORMAT_VERSION:
        raise ValueError(
            f"the file has format version {version}, but this skdigits reads format versions "
            f"up to {FORMAT_VERSION}; upgrade skdigits to load it"
        )
    if int(version) != FORMAT_VERSION:
        raise ValueError(f"format version {version} is not a safetensors skdigits file")
    entries = [entry for name, entry in header.items() if name != "__metadata__"]
    if len(entries) > MAX_TENSORS:
        raise ValueError(f"it holds {len(entries):,} tensors, more than {MAX_TENSORS:,}")
    try:
        end = max((int(entry["data_offsets"][1]) for entry in entries), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise ValueError("its header describes its tensors wrongly") from None
    if end != data_size:
        raise ValueError(
            f"the file is truncated or corrupted: its tensors take {end:,} bytes, but "
            f"{data_size:,} follow the header"
        )
    return header


def _load_tensors(data):
    """Return the tensors of safetensors bytes, parsed and checked by the safetensors library."""
    try:
        return safetensors.torch.load(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise ValueError(f"its weights cannot be read: {error}") from None


def _parse_description(text):
    """Return the JSON description, its nesting and integers bounded."""
    # Measured on the text, before parsing: json.loads recurses once per level.
    if _nesting(text) > MAX_DEPTH:
        raise ValueError(f"its description is nested more than {MAX_DEPTH} levels deep")
    try:
        description = json.loads(text, parse_int=_parse_int64)
    except json.JSONDecodeError as error:
        raise ValueError(f"its description is not valid JSON: {error}") from None
    if not isinstance(description, dict):
        raise ValueError("its description is not a JSON object")
    return description


# The unrolled form: runs of plain characters matched at once, so a long string costs no
# per-character backtracking state.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def _nesting(text):
    """Return how deeply brackets nest in JSON ``text``, ignoring those inside strings."""
    brackets = np.frombuffer(_NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text)).encode(), np.uint8)
    opening = (brackets == ord("[")) | (brackets == ord("{"))
    return int(np.cumsum(np.where(opening, 1, -1)).max(initial=0))


def _model_file(tensors, description, version):
    """Return the :class:`ModelFile` of a parsed description, its sections type-checked."""
    classifier = description["classifier"]
    pipeline = description["pipeline"]
    metadata = description["metadata"]
    if not isinstance(classifier, dict):
        raise ValueError("its classifier's description is not a JSON object")
    if pipeline is not None and not isinstance(pipeline, dict):
        raise ValueError("'pipeline' should be null or an object")
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' should be an object")
    _check_json_value(metadata, "'metadata'", depth=1)
    return ModelFile(tensors, classifier, pipeline, metadata, version)


def _read_legacy(file, size):
    """Return the :class:`ModelFile` of a format 1 or 2 file, after its magic bytes."""
    rest = file.read(_LEGACY_HEADER.size - len(LEGACY_MAGIC))
    if len(rest) < _LEGACY_HEADER.size - len(LEGACY_MAGIC):
        raise ValueError(f"the file is truncated: {size} bytes, shorter than its header")
    _, version, length, digest = _LEGACY_HEADER.unpack(LEGACY_MAGIC + rest)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"the file has format version {version}, but this skdigits reads format versions "
            f"up to {FORMAT_VERSION}; upgrade skdigits to load it"
        )
    if version not in (1, 2):
        raise ValueError(f"format version {version} does not exist; the file is corrupted")
    if length != size - _LEGACY_HEADER.size:
        raise ValueError(
            f"the file is truncated or corrupted: its header announces {length} bytes of "
            f"model, but {size - _LEGACY_HEADER.size} follow"
        )
    payload = file.read(length)
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError(
            "checksum mismatch: the file is corrupted or was modified after it was saved"
        )
    (header_length,) = struct.unpack_from("<Q", payload.ljust(8, b"\0"))
    if header_length > MAX_HEADER_BYTES:
        raise ValueError(f"its header announces {header_length:,} bytes, beyond any model")
    tensors = _load_tensors(payload)
    header = json.loads(payload[8 : 8 + header_length])
    text = header.get("__metadata__", {}).get(_DESCRIPTION_KEY)
    if text is None:
        raise ValueError("it holds weights but no skdigits description")
    described = _parse_description(text)
    for key, expected in (("format", FORMAT_NAME), ("format_version", version)):
        if described.get(key) != expected:
            raise ValueError(f"{key!r} should be {expected!r}; got {described.get(key)!r:.80}")
    description = {
        "versions": described.get("versions"),
        "classifier": {
            key: described[key] for key in ("params", "attributes") if key in described
        },
        # Format 1 stored a classifier and nothing else.
        "pipeline": described.get("pipeline") if version == 2 else None,
        "metadata": described.get("metadata", {}) if version == 2 else {},
    }
    return _model_file(tensors, description, version)


def _parse_int64(digits):
    """Return the int JSON spells as ``digits``, if a 64-bit integer can hold it."""
    # Every count, shape and label of a model fits; a larger one could only overflow later,
    # deep inside numpy or torch, with a less helpful error. Up to 18 digits always fit.
    if len(digits) < 19:
        return int(digits)
    value = int(digits)
    if not _fits_int64(value):
        raise ValueError(f"its description holds an integer out of range: {digits:.40}")
    return value


def _fits_int64(value):
    return -(2**63) <= value < 2**63


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


def _plain_scalar(value):
    """Return a numpy scalar as the Python scalar JSON can store (a ``json.dumps`` hook)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store a {type(value).__name__} in a skdigits model file")


def _write_atomically(target, data):
    """Write ``data`` to the file ``target`` through a locked temporary file beside it.

    Renaming within one directory is atomic, so ``target`` holds either its old content or
    all of ``data``, even if the process dies mid-write. An existing file's permission bits
    are kept.
    """
    directory, name = os.path.split(target)
    _remove_stale_temporaries(directory, name)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    # os.open rather than tempfile: mkstemp makes files only their owner can read, while a
    # new model file should get the usual permissions (0o666 less the umask). O_EXCL never
    # reuses an existing file or follows a link.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            # Held while the file is open: a save meanwhile sees a living writer.
            _lock(file.fileno())
            if mode is not None:
                os.chmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _remove_stale_temporaries(directory, name):
    """Remove the temporary files that killed saves to ``name`` left in ``directory``.

    A temporary file is stale when no process holds its lock: the lock dies with its
    writer, even one killed with SIGKILL, so a save in progress elsewhere is never disturbed.
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{16}}\.tmp")
    with os.scandir(directory) as entries:
        candidates = [e.path for e in entries if pattern.fullmatch(e.name) and e.is_file()]
    for path in candidates:
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            _lock(descriptor)
            os.unlink(path)
        except OSError:
            pass  # a living writer holds it, or it is gone already
        finally:
            os.close(descriptor)


try:
    import fcntl
except ImportError:  # Windows: files open for writing cannot be removed there anyway.

    def _lock(descriptor):
        """Do nothing: without fcntl, an open file is protected by the system itself."""

else:

    def _lock(descriptor):
        """Take an exclusive lock on an open file, raising BlockingIOError if it is held."""
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
