"""Run the ``skdigits`` command as ``python -m skdigits``."""

import sys

from .cli import main

# Guarded: pytest's --doctest-modules imports every module of the package.
if __name__ == "__main__":
    sys.exit(main())
