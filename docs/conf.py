"""Sphinx configuration of the skdigits documentation.

Build it from the repository root, with the ``docs`` extra installed::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The examples of ``examples/plot_*.py`` run during the build, in their fast default mode, and
become the gallery; ``-D plot_gallery=0`` builds the gallery pages without running them.
"""

import contextlib
import io
import os
import re
from pathlib import Path
from unittest import mock

import skdigits
from skdigits import cli

# The examples draw with matplotlib; no window may open during a build.
os.environ["MPLBACKEND"] = "Agg"

project = "skdigits"
copyright = "the skdigits developers"
version = release = skdigits.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# Single backticks, as in `name`, render as code, as in Markdown, not as a reference.
default_role = "literal"

autosummary_generate = True
# The class template lists each method itself; numpydoc's method table would repeat it.
numpydoc_show_class_members = False
autodoc_typehints = "none"

# The examples are the gallery: every plot_*.py, but not helpers such as _options.py. The
# ignore pattern matches a file name starting with "_", whether sphinx-gallery matches it
# against the bare file name (recent versions) or the full path (older ones).
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(^|[/\\])_[^/\\]*$",
    "doc_module": ("skdigits",),
    "backreferences_dir": "gen_modules/backreferences",
    # The timing pages would be written into docs/ itself, and differ on every build.
    "write_computation_times": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"skdigits {release}"
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}
html_show_sourcelink = False

CLI_COMMANDS = ("train", "evaluate", "predict", "benchmark")


def write_cli_help(app):
    """Write the ``--help`` text of ``skdigits`` and each command, for command_line.rst.

    The page includes the parser's own words, so it cannot fall behind the command.
    """
    folder = Path(app.srcdir) / "gen_modules" / "cli"
    folder.mkdir(parents=True, exist_ok=True)
    for command in ("skdigits", *CLI_COMMANDS):
        argv = ["--help"] if command == "skdigits" else [command, "--help"]
        text = io.StringIO()
        # argparse wraps help to the terminal width; fix it so every build writes the same.
        with mock.patch.dict(os.environ, {"COLUMNS": "88"}), contextlib.redirect_stdout(text):
            cli.main(argv)
        help_file = folder / f"{command}.txt"
        # Rewriting an unchanged file would make Sphinx rebuild the page every time.
        if not help_file.is_file() or help_file.read_text() != text.getvalue():
            help_file.write_text(text.getvalue())


def skip_metadata_request_setters(app, what, name, obj, skip, options):
    """Leave scikit-learn's generated ``set_*_request`` methods out of the class pages.

    scikit-learn adds them to every estimator for metadata routing; their docstrings link to
    scikit-learn's own glossary and user guide, which these pages do not have.
    """
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("builder-inited", write_cli_help)
    app.connect("autodoc-skip-member", skip_metadata_request_setters)
