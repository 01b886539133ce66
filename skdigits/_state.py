"""Checks for estimator state read back from plain data: JSON values, field by field.

A fitted estimator converts itself to tensors and a JSON-able dict (``to_state``) and back
(``from_state``). Reading back trusts nothing: a model file may come from anyone, so every
field is checked for presence, type and range before it is used, and the error names it.
"""

import inspect

import numpy as np
from sklearn.utils.multiclass import type_of_target

from ._images import check_label_types

# JSON nesting allowed in a training history: epochs, an epoch's record, its batches, a
# batch's record, and two levels for values such as per-class scores that callbacks add.
MAX_HISTORY_DEPTH = 6
MAX_HISTORY_EPOCHS = 100_000


def to_plain(value):
    """Return ``value`` as plain JSON data: tuples as lists, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def field(mapping, key, is_valid, expected):
    """Return ``mapping[key]``, raising a ValueError if it is missing or not ``expected``."""
    if key not in mapping:
        raise ValueError(f"its description lacks {key!r}")
    value = mapping[key]
    if not is_valid(value):
        raise ValueError(f"{key!r} should be {expected}; got {value!r:.80}")
    return value


def checked(key, check, value):
    """Return ``check(value)``, its ValueError prefixed by the field name ``key``."""
    try:
        return check(value)
    except ValueError as error:
        raise ValueError(f"{key!r}: {error}") from None


def params_from_state(estimator_class, stored, checks):
    """Return the constructor arguments of ``estimator_class`` in ``stored``, lists as tuples.

    ``checks`` maps the parameters that need more than to be a JSON scalar (those holding
    tuples, among others) to their check and a description of what it expects. Parameters
    missing from ``stored`` keep their defaults, as in files written before they existed.
    """
    known = inspect.signature(estimator_class).parameters
    unknown = sorted(set(stored) - set(known))
    if unknown:
        raise ValueError(
            f"unknown parameters {unknown}; the file was modified or written by another "
            "version of skdigits"
        )
    params = {}
    for name in stored:
        check, expected = checks.get(name, (is_scalar, "a number, string, bool or null"))
        value = field(stored, name, check, expected)
        # JSON has no tuples: parameters that hold them come back as lists.
        params[name] = tuple(value) if isinstance(value, list) else value
    return params


def classes_to_state(classes):
    """Return class labels as JSON: their dtype and their values."""
    return {"dtype": classes.dtype.str, "values": classes.tolist()}


def classes_from_state(stored):
    """Return the class labels in ``stored``, checked to be labels ``fit`` would produce.

    ``fit`` gives sorted, distinct labels of one kind, at least two, never continuous
    numbers; anything else could only come from a modified file.
    """
    dtype_name = field(stored, "dtype", lambda name: isinstance(name, str), "a dtype name")
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        raise ValueError(f"'dtype' {dtype_name!r:.80} is not a numpy dtype") from None
    checks = {
        "b": lambda label: isinstance(label, bool),
        "i": is_int,
        "u": lambda label: is_int(label) and label >= 0,
        "f": is_number,
        "U": lambda label: isinstance(label, str),
        "O": lambda label: isinstance(label, (str, int, float)) and not isinstance(label, bool),
    }
    if dtype.kind not in checks:
        raise ValueError(f"class labels of dtype {dtype} are not supported")
    check = checks[dtype.kind]
    values = field(
        stored, "values", lambda v: isinstance(v, list) and all(map(check, v)), f"{dtype} labels"
    )
    try:
        # The width of a string dtype is a size request; the labels give the real width.
        classes = np.array(values, dtype=str if dtype.kind == "U" else dtype)
    except OverflowError:
        raise ValueError(f"class labels {values!r:.80} do not fit dtype {dtype}") from None
    try:
        check_label_types(classes)
    except ValueError:
        raise ValueError(f"should be labels of one kind; got {values!r:.80}") from None
    kind = type_of_target(classes) if len(classes) else "empty"
    if kind not in ("binary", "multiclass") or len(classes) < 2:
        raise ValueError(
            f"'values' should be class labels fit accepts (at least two, of one kind, not "
            f"continuous numbers); got {kind} labels {values!r:.80}"
        )
    if not np.array_equal(np.unique(classes), classes):
        raise ValueError(f"'values' should be sorted and distinct; got {values!r:.80}")
    return classes


def history_from_state(value):
    """Return a training history read back, checked to be a bounded list of records."""
    if not (isinstance(value, list) and all(isinstance(epoch, dict) for epoch in value)):
        raise ValueError(f"should be a list of objects; got {value!r:.80}")
    if len(value) > MAX_HISTORY_EPOCHS:
        raise ValueError(f"holds {len(value):,} epochs, more than {MAX_HISTORY_EPOCHS:,}")
    if json_depth(value) > MAX_HISTORY_DEPTH:
        raise ValueError(f"is nested more than {MAX_HISTORY_DEPTH} levels deep")
    return value


def json_depth(value):
    """Return how deeply lists and dicts nest in a JSON value (0 for a scalar), iteratively."""
    containers = (list, dict)
    deepest, pending = 0, [(value, 1)] if isinstance(value, containers) else []
    while pending:
        value, depth = pending.pop()
        deepest = max(deepest, depth)
        items = value.values() if isinstance(value, dict) else value
        pending.extend((item, depth + 1) for item in items if isinstance(item, containers))
    return deepest


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_positive_int(value):
    return is_int(value) and value > 0


def is_count(value):
    return is_int(value) and value >= 0


def is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


def is_dict(value):
    return isinstance(value, dict)


def is_list(value):
    return isinstance(value, list)


def is_list_of_strings(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
