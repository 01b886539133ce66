"""The one door to scikit-learn's private API.

scikit-learn keeps ``_fit_context`` and its parameter constraints private, and they change
between releases (``_fit_context`` gained new behaviour in 1.9). Every skdigits module
imports them from here: ``_fit_context`` through the sklearn-compat package, which tracks
those changes and bounds the scikit-learn versions it supports (pyproject.toml bounds both),
and the constraint classes and ``_check_sample_weight``, which sklearn-compat does not
wrap, from their private modules here and nowhere else. CI runs the tests on the oldest and
the newest versions allowed.
"""

from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight
from sklearn_compat.base import _fit_context

__all__ = ["HasMethods", "Interval", "StrOptions", "_check_sample_weight", "_fit_context"]
