"""The documentation builds with warnings as errors, and documents every public name.

Needs the ``docs`` extra (Sphinx, sphinx-gallery, numpydoc, ...); skipped without it. The
gallery is built without running the examples (``plot_gallery=0``): tests/test_examples.py
runs them already, and running them again here would take minutes.
"""

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import skdigits
from skdigits import baselines, datasets, plotting

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")

ROOT = Path(__file__).resolve().parents[1]
# What a build writes into docs/ itself; the copy built here starts without it.
GENERATED = ("_build", "auto_examples", "gen_modules")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Return the finished Sphinx process and the folder of the HTML it wrote.

    The docs and examples are copied first, so that the build writes nothing into the
    repository and cannot disturb a build of your own.
    """
    sources = tmp_path_factory.mktemp("sources")
    shutil.copytree(ROOT / "docs", sources / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(
        ROOT / "examples", sources / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    html = tmp_path_factory.mktemp("html")
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-D",
            "plot_gallery=0",
            "-d",
            str(sources / "doctrees"),
            str(sources / "docs"),
            str(html),
        ],
        cwd=sources,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return process, html


def test_docs_build_with_warnings_as_errors(build):
    process, html = build
    assert process.returncode == 0, (process.stdout + process.stderr)[-5000:]
    assert (html / "index.html").is_file()


def test_gallery_has_a_page_for_every_example_and_none_for_helpers(build):
    _, html = build
    pages = {path.stem for path in (html / "auto_examples").glob("*.html")} - {"index"}
    assert pages == {path.stem for path in (ROOT / "examples").glob("plot_*.py")}


@pytest.mark.parametrize(
    "name",
    [f"skdigits.{name}" for name in skdigits.__all__ if name != "__version__"]
    + [f"skdigits.datasets.{name}" for name in datasets.__all__]
    + [f"skdigits.plotting.{name}" for name in plotting.__all__]
    + [f"skdigits.baselines.{name}" for name in baselines.__all__],
)
def test_api_reference_has_a_page_for_every_public_name(build, name):
    _, html = build
    assert (html / "gen_modules" / f"{name}.html").is_file()


@pytest.mark.parametrize(
    "estimator",
    [skdigits.CNNDigitClassifier, skdigits.FineTunedClassifier, skdigits.ImageTransformer],
)
def test_estimator_pages_document_each_public_method(build, estimator):
    _, html = build
    page = (html / "gen_modules" / f"skdigits.{estimator.__name__}.html").read_text()
    methods = [
        name
        for name, value in vars(estimator).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]
    assert methods
    for name in methods:
        assert f'id="skdigits.{estimator.__name__}.{name}"' in page
