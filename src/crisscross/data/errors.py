"""The one exception type for problems with input data (files, folders, formats).

Loaders raise :class:`DataError` with a message that names the file and, where it applies, the 1-based
line, so the CLI can print it as a single actionable line.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent; the message names the file (and line)."""
