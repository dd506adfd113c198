"""The one exception type for problems with input data (files, folders, formats).

Loaders raise :class:`DataError` with a message that names the file and, where it applies, the 1-based
line, so the CLI can print it as a single actionable line.
"""

from __future__ import annotations

import tokenize
import zipfile
import zlib

__all__ = ["NUMPY_FILE_ERRORS", "DataError", "one_line_error"]

#: What ``np.load`` and the zip / pickle layers under it raise for a damaged, encrypted or truncated file, or a header
#: that declares a huge array: readers turn these into one-line :class:`DataError` messages.
NUMPY_FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, MemoryError,
    tokenize.TokenError,
)


class DataError(ValueError):
    """Input data is missing, malformed or inconsistent; the message names the file (and line)."""


def one_line_error(err: BaseException) -> str:
    """``"<type>: <message>"`` of ``err`` on one line (zipfile, YAML and numpy messages can span several)."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
