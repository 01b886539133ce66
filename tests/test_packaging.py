"""The dependency ranges of pyproject.toml and the oldest-versions CI run agree.

CI runs the test suite twice: on the newest versions pyproject.toml allows, and on the oldest,
installed with ``pip install -c .ci/oldest.txt``. That constraints file must pin every direct
dependency (runtime and every extra) at exactly the lower bound pyproject.toml declares, or
the bounds would claim versions that no run tests.
"""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / ".ci" / "oldest.txt"


def declared_requirements():
    """Return ``[(line, Requirement)]``: the dependencies and extras of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    own_name = canonicalize_name(project["name"])
    # An extra may name the project's own other extras (skdigits[dask,docs]): not a dependency.
    requirements = [(line, Requirement(line)) for line in lines]
    return [(line, req) for line, req in requirements if canonicalize_name(req.name) != own_name]


def lower_bound(requirement):
    """Return the version of the one ``>=`` specifier of ``requirement``, or None."""
    bounds = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    return bounds[0] if len(bounds) == 1 else None


def declared_lower_bounds():
    """Return ``{name: {lower bound, ...}}`` over every place a dependency is declared."""
    bounds = {}
    for _, requirement in declared_requirements():
        bounds.setdefault(canonicalize_name(requirement.name), set()).add(lower_bound(requirement))
    return bounds


def pinned_versions():
    """Return ``{name: version}`` from the ``name==version`` lines of .ci/oldest.txt."""
    pins = {}
    for number, raw in enumerate(CONSTRAINTS.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f".ci/oldest.txt line {number}: {raw!r} must be exactly name==version"
        )
        name = canonicalize_name(requirement.name)
        assert name not in pins, f".ci/oldest.txt pins {requirement.name} twice"
        pins[name] = specs[0].version
    return pins


def test_every_dependency_has_one_lower_bound():
    missing = [
        line for line, requirement in declared_requirements() if not lower_bound(requirement)
    ]
    assert not missing, f"dependencies without exactly one >= lower bound: {missing}"


def test_a_dependency_declared_in_several_places_has_the_same_lower_bound_everywhere():
    differing = {
        name: bounds for name, bounds in declared_lower_bounds().items() if len(bounds) > 1
    }
    assert not differing, f"dependencies with different lower bounds: {differing}"


def test_oldest_constraints_pin_exactly_the_lower_bound_of_each_direct_dependency():
    expected = {
        name: max((bound for bound in bounds if bound), key=Version, default=None)
        for name, bounds in declared_lower_bounds().items()
    }
    pins = pinned_versions()
    other = {name: (pins[name], expected[name]) for name in pins.keys() & expected.keys()}
    assert pins == expected, (
        f"not pinned: {sorted(expected.keys() - pins.keys())}; "
        f"pinned but not a dependency: {sorted(pins.keys() - expected.keys())}; "
        "(pinned, lower bound) where they differ: "
        f"{ {name: versions for name, versions in other.items() if len(set(versions)) > 1} }"
    )
