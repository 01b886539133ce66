"""The version of skdigits, in a module of its own so that any module can record it."""

__version__ = "0.2.0.dev0"
