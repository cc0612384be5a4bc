"""Errors the data loaders raise: each names the file and the fix.

All are ``ValueError`` subclasses so a caller (the CLI) can catch every bad-input case
with one ``except ValueError``; :class:`MissingDataError` is also a
``FileNotFoundError`` so ``except OSError`` code keeps working.
"""

from __future__ import annotations


class DataFileError(ValueError):
    """A data file exists but is corrupt, truncated or of the wrong kind."""


class MissingDataError(FileNotFoundError, ValueError):
    """A data file or folder is not where it was looked for."""


class MissingDependencyError(ImportError, ValueError):
    """An optional package a loader needs (e.g. the SVG rasteriser) is not installed."""
