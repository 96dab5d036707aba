"""A pytest plugin that checks mutmut's mutants in one process, each test's fixtures built once.

mutmut runs every mutant in a fresh pytest session, so a test whose fixture builds a tiny model or a whole eval
run pays for it once per mutant (15 s for the answer-sheet fixture: 823 mutants of ``report/answers_report.py``
would take hours). The mutated functions of a judge kind run inside the tests, not their fixtures, so this plugin
runs each test once per mutant with the fixtures it already has:

    make mutate MUTANTS="dataigm.judges.q16*"        # once: mutmut writes mutants/ and maps tests to functions
    cd mutants && INPROC_MUTANTS=names.txt INPROC_OUT=results.json \\
        python -m pytest -p mutate_in_process tests/test_judge_q16.py     # with PYTHONPATH=../tools

``names.txt`` holds mutant names, one per line (``mutmut results --all true``). A test runs a mutant only where
mutmut's stats say it reaches the mutated function (``INPROC_ALL=1``: every test runs every mutant, for test files
mutmut has not mapped). A mutant is killed when a test fails under it and passes again without it (else
``suspect``); every run gets a fresh ``tmp_path`` and an empty ``capsys``. A mutant whose function runs only inside a fixture shows as
survived here: the scores are floors. ``INPROC_TIMEOUT`` (s, default 60) stops a mutant that loops.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

_NAMES = [line.strip() for line in open(os.environ["INPROC_MUTANTS"]) if line.strip()] if "INPROC_MUTANTS" in os.environ else []
_STATS: dict[str, list[str]] = (json.loads(Path("mutmut-stats.json").read_text())["tests_by_mangled_function_name"]
                                if Path("mutmut-stats.json").is_file() else {})
_RESULTS: dict[str, dict[str, Any]] = {m: {"status": "survived"} for m in _NAMES}


class _Timeout(BaseException):
    pass


def _alarm(*_: Any) -> None:
    raise _Timeout()


def _reaches(mutant: str, nodeid: str) -> bool:
    tests = _STATS.get(mutant.rsplit("__mutmut_", 1)[0])
    if os.environ.get("INPROC_ALL") or tests is None:
        return True
    return any(t == nodeid or t.split("[")[0] == nodeid.split("[")[0] for t in tests)


def _fresh_tmp(item: pytest.Item) -> None:
    """A new ``tmp_path`` and an empty ``capsys``: a rerun must not find the files or output of the run before."""
    funcargs = getattr(item, "funcargs", {})
    if "tmp_path" in funcargs:
        funcargs["tmp_path"] = Path(tempfile.mkdtemp(prefix="mutant-"))
    for name in ("capsys", "capfd"):
        if name in funcargs:
            funcargs[name].readouterr()


def _run(item: pytest.Item, mutant: str) -> BaseException | None:
    _fresh_tmp(item)
    os.environ["MUTANT_UNDER_TEST"] = mutant
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(os.environ.get("INPROC_TIMEOUT", "60")))
    try:
        item.runtest()
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any failure of the test kills the mutant
        return e
    finally:
        signal.alarm(0)
        os.environ["MUTANT_UNDER_TEST"] = ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    for mutant in _NAMES:
        if _RESULTS[mutant]["status"] != "survived" or not _reaches(mutant, item.nodeid):
            continue
        error = _run(item, mutant)
        if isinstance(error, _Timeout):
            _RESULTS[mutant] = {"status": "timeout", "test": item.nodeid}
        elif error is not None:  # killed only if the test passes again without the mutant
            _RESULTS[mutant] = {"status": "killed" if _run(item, "") is None else "suspect", "test": item.nodeid,
                                "error": type(error).__name__}
    if _NAMES:
        Path(os.environ["INPROC_OUT"]).write_text(json.dumps(_RESULTS, indent=0))
    _fresh_tmp(item)
    yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _NAMES:
        counts = Counter(r["status"] for r in _RESULTS.values())
        terminalreporter.write_line(f"mutants: {dict(counts)}; score {counts['killed'] / len(_NAMES):.1%} of {len(_NAMES)}")
