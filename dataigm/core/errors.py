"""The one base class for errors a user can cause (bad input, missing files, refused settings).

The command line prints any :class:`DataigmError` as one line on stderr and exits non-zero; ``-v`` shows the
traceback. Raise a subclass (or this class) wherever the fix is in the user's hands, not in the code.
"""

from __future__ import annotations


class DataigmError(Exception):
    """An expected error: its message says what was wrong and, where it helps, what is allowed."""


class UnknownNameError(DataigmError, KeyError):
    """A name that no registry holds; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
