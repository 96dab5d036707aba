"""Per-module mutation score from `mutmut results --all true` (read on stdin), as docs/testing.md reports it.

Score = killed / (killed + survived + no tests + timeout); "timeout" counts as not killed, so the score is a
floor. Equivalent mutants are excluded at the source with ``# pragma: no mutate`` and a reason.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+?)\.x[_ǁ].*__mutmut_\d+: (?P<status>.+)$")
KILLED = {"killed"}
COUNTED = {"killed", "survived", "no tests", "timeout", "suspicious"}


def main() -> int:
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in sys.stdin:
        m = LINE.match(line)
        if m:
            per_module[m["name"]][m["status"].strip()] += 1
    total = Counter()
    print(f"{'module':32} {'killed':>7} {'survived':>8} {'no tests':>8} {'timeout':>7} {'score':>6}")
    for module, c in sorted(per_module.items()):
        total.update(c)
        print(_row(module, c))
    print(_row("all", total))
    return 0


def _row(name: str, c: Counter[str]) -> str:
    counted = sum(c[s] for s in COUNTED)
    score = sum(c[s] for s in KILLED) / counted if counted else float("nan")
    return f"{name:32} {c['killed']:7d} {c['survived']:8d} {c['no tests']:8d} {c['timeout']:7d} {score:6.1%}"


if __name__ == "__main__":
    sys.exit(main())
