"""The one family of errors a user can cause (bad input, missing files, refused settings).

The command line prints any :class:`DataigmError` (and any ``OSError``) as one line on stderr and exits
non-zero; every other exception is a bug and is reported as an internal error with its traceback.
Raise a subclass (or this class) wherever the fix is in the user's hands, not in the code.
"""

from __future__ import annotations


class DataigmError(Exception):
    """An expected error: its message says what was wrong and, where it helps, what is allowed."""


class InputError(DataigmError, ValueError):
    """A bad value given by the user (a flag, a field of a file, an argument); also a ``ValueError``."""


class UnknownNameError(DataigmError, KeyError):
    """A name that is not in its registry or table; the message lists the valid ones. Also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of blanks folded into single spaces."""
    return " ".join(str(text).split())


class MissingExtraError(DataigmError, ImportError):
    """An optional part of dataigm whose packages are not installed; ``extra`` names the pip extra that installs
    them (``pip install 'dataigm[<extra>]'``). Also an ``ImportError``."""

    def __init__(self, extra: str, message: str) -> None:
        super().__init__(message)
        self.extra = extra
