"""The numpy-only unpickler: arrays (as numpy 1.x and 2.x pickle them) load; anything that names code is refused
before it runs."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from dataigm.core.safe_pickle import UnsafePickleError, load_numpy_pickle
from runs_code import RunsCode


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_arrays_load_as_written(tmp_path: Path, protocol: int) -> None:
    array = np.arange(12, dtype=np.float16).reshape(2, 6) / 7
    path = tmp_path / "prompts.p"
    path.write_bytes(pickle.dumps(array, protocol=protocol))
    loaded = load_numpy_pickle(path)
    assert loaded.dtype == np.float16 and np.array_equal(loaded, array)


def test_numpy_1_module_names_load(tmp_path: Path) -> None:
    """Q16's prompts.p were written by numpy 1.x, which names numpy.core.multiarray._reconstruct."""
    data = pickle.dumps(np.ones((2, 3), np.float32), protocol=2)
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    (tmp_path / "old.p").write_bytes(old)
    assert load_numpy_pickle(tmp_path / "old.p").tolist() == [[1.0] * 3] * 2


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(UnsafePickleError, match=r"refused to unpickle (posix|os)\.system; only numpy arrays"):
        load_numpy_pickle(path)
    assert not marker.exists()
    nested = tmp_path / "nested.p"  # code hidden inside an otherwise allowed array pickle is refused too
    nested.write_bytes(pickle.dumps([np.zeros(2), RunsCode(marker)]))
    with pytest.raises(UnsafePickleError, match="refused to unpickle"):
        load_numpy_pickle(nested)
    assert not marker.exists()


@pytest.mark.parametrize("value, message", [([1.0, 2.0], "holds a list, not a numpy array"), (b"junk", "holds a bytes")])
def test_other_values_are_refused(tmp_path: Path, value: object, message: str) -> None:
    path = tmp_path / "x.p"
    path.write_bytes(pickle.dumps(value))
    with pytest.raises(UnsafePickleError, match=message):
        load_numpy_pickle(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(UnsafePickleError, match="not a pickled numpy array"):
        load_numpy_pickle(path)
