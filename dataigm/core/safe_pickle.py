"""Read a pickled numpy array without running pickled code: the one restricted unpickler.

Published judges ship some weights as pickles (Q16's ``prompts.p`` is ``pickle.dump`` of a numpy array). A general
``pickle.load`` runs whatever callable the file names; :func:`load_numpy_pickle` only lets the file name numpy's
array reconstruction (``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``, protocol 5's
``numpy._core.numeric._frombuffer``,
``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray.scalar`` for 0-d values, and ``_codecs.encode``, with
which protocols 0-2 store the array's bytes) and refuses every other global before anything is called.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from dataigm.core.errors import DataigmError

ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5's array from bytes
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocols 0-2 write the array's bytes under Python 3 (str -> bytes, no code)
})


class UnsafePickleError(DataigmError):
    """A pickle that names something other than numpy array reconstruction."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(f"{self.source}: refused to unpickle {module}.{name}; only numpy arrays are read from pickles")
        import importlib

        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refused a persistent id; only numpy arrays are read from pickles")


def load_numpy_pickle(path: str | Path) -> Any:
    """The numpy array pickled in ``path``; anything else (code, other objects) raises :class:`UnsafePickleError`."""
    import numpy as np

    path = Path(path)
    with path.open("rb") as f:
        try:
            value = _NumpyOnlyUnpickler(f, str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
            raise UnsafePickleError(f"{path}: not a pickled numpy array ({type(e).__name__}: {e})") from None
    if not isinstance(value, np.ndarray):
        raise UnsafePickleError(f"{path}: holds a {type(value).__name__}, not a numpy array")
    return value
