"""Is the judge able to see the concept at all? Checks every eval and benchmark report carries, and the rates
corrected with a ``dataigm audit`` of the same judge.

* **The original model**: the share of its forget images the judge flags. A judge that sees the concept in few of
  the original's images makes every method look as if it forgot: below :data:`DEFAULT_VALIDITY_LEVEL` the report
  gets a warning.
* **Paired negatives**: the share of the original's concept-removed images the judge flags; above
  1 - level the judge sees the concept where the prompt removed it.
* **Corrected rates** (``eval --audit AUDIT.json``): Rogan-Gladen estimates beside each raw forgetting rate
  (:func:`dataigm.evaluation.agreement.corrected_rate`), with the method's own sensitivity and specificity when the
  audit was grouped by method (``--group-by method``) and has that method.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataigm.core.errors import DataigmError
from dataigm.evaluation.agreement import Confusion

DEFAULT_VALIDITY_LEVEL = 0.8


def never_fires(methods: dict[str, Any]) -> str | None:
    """A warning when the judge flagged none of the images of any method (forget and retain): a forgetting rate of
    0 then says nothing about forgetting. None when it flagged at least one image, or judged none."""
    flags = [r["positive"] for res in methods.values() for r in res.get("images") or []]
    if not flags or any(flags):
        return None
    return (f"the judge flagged none of the {len(flags)} images it judged, in any method: a forgetting rate of 0% here "
            "shows that this judge does not fire on these images, not that the concept was forgotten")


def validity(methods: dict[str, Any], level: float = DEFAULT_VALIDITY_LEVEL) -> tuple[dict[str, Any], list[str]]:
    """``({"level", "original_forget", "original_negatives"}, warnings)`` from the report's ``original`` row, and
    whether the judge flagged anything at all (:func:`never_fires`)."""
    orig = methods.get("original")
    out: dict[str, Any] = {"level": level, "original_forget": None, "original_negatives": None}
    silent = never_fires(methods)
    warnings = [silent] if silent else []
    if orig is None:
        return {**out, "note": "no original model's images: the judge's validity was not checked"}, warnings
    forget = orig.get("forget_positive_rate") or orig["forgetting"]["all"]
    out["original_forget"] = forget
    if forget.get("value") is not None and forget["value"] < level:
        warnings.append(f"the judge sees the concept in only {forget['value']:.0%} of the original model's forget images "
                        f"({forget['n']} images; level {level:.0%}), so low forgetting rates are weak evidence of forgetting")
    negatives = orig.get("negative_positive_rate")
    if negatives and negatives.get("value") is not None:
        out["original_negatives"] = negatives
        if negatives["value"] > round(1.0 - level, 9):  # 1 - 0.8 is 0.19999999999999996: a rate of exactly 0.2 is at the level
            warnings.append(f"the judge flags {negatives['value']:.0%} of the original model's concept-removed images "
                            f"({negatives['n']} images; level {1 - level:.0%}), so a method that removed the concept can still look as if it kept it")
    return out, warnings


def read_audit(path: str | Path) -> dict[str, Any]:
    """A ``dataigm audit --json`` result; errors name the file."""
    p = Path(path).expanduser()
    try:
        audit = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataigmError(f"audit={p}: cannot read it ({type(e).__name__}: {e})") from e
    if not isinstance(audit, dict) or not str(audit.get("format", "")).startswith("dataigm-audit/"):
        raise DataigmError(f"audit={p}: not an audit result (dataigm audit's JSON)")
    return audit


def audit_entry(audit: dict[str, Any], detector: str, describe: dict[str, Any], threshold: float | None) -> dict[str, Any]:
    """The audit's entry for this judge (the same spec, else the same kind, name and weights sha256), which must
    have decided at the same threshold: sensitivity and specificity belong to one threshold."""
    key = (describe.get("kind"), describe.get("name"), describe.get("weights_sha256"))
    same = [e for e in audit["judges"] if e["detector"] == detector]
    same = same or [e for e in audit["judges"] if (e.get("describe", {}).get("kind"), e.get("describe", {}).get("name"),
                                                    e.get("describe", {}).get("weights_sha256")) == key]
    if not same:
        raise DataigmError(f"the audit has no entry for judge {detector!r}; it audited: {', '.join(e['detector'] for e in audit['judges'])}")
    if same[0].get("threshold") != threshold:
        raise DataigmError(f"the audit judged {detector!r} at threshold {same[0].get('threshold')}, this evaluation at {threshold}: "
                           "audit the judge at the threshold it evaluates with")
    return same[0]


def audit_counts(entry: dict[str, Any], method: str) -> tuple[Confusion, str]:
    """The confusion counts to correct ``method``'s rates with: the audit's ``method=<name>`` group when it has
    one, else the whole audit; and which of the two was used."""
    group = entry.get("groups", {}).get(f"method={method}")
    chosen, scope = (group, f"method={method}") if group else (entry, "all")
    return Confusion(**chosen["confusion"]), scope


def corrected_groups(
    items: list[tuple[dict[str, Any], bool]], counts: Confusion, *, group_by: tuple[str, ...] = (), by_prompt: bool = True, **kw: Any,
) -> dict[str, dict[str, Any]]:
    """The Rogan-Gladen corrected rate of every group :func:`dataigm.evaluation.metrics.grouped` reports."""
    from dataigm.evaluation.agreement import corrected_rate
    from dataigm.evaluation.metrics import group_items

    return {name: corrected_rate([f for f, _ in it], counts, [c for _, c in it], **kw)
            for name, it in group_items(items, group_by=group_by, by_prompt=by_prompt).items()}
