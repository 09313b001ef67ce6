"""Quality and size budgets (`hearth eval --budget budgets.toml`).

A budget file is flat TOML; every key is optional, unknown keys are an error:

    max_package_mb       = 8        # MiB (2**20 bytes), manifest + every file it lists
    max_first_load_bytes = 8000000  # bytes fetched before the first token (= all package files)
    max_ppl_increase_pct = 5.0      # (ppl_package / ppl_reference - 1) * 100
    min_top1_agreement   = 0.85     # fraction of positions where both models' argmax agree
    min_cosine           = 0.99     # encoders (embedding parity); not measured for decoders

A budget whose metric the package kind does not measure (min_cosine for a decoder) is listed as
"not measured" and does not fail the run. A measured value that is NaN fails.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomllib

from ..errors import HearthError


class BudgetError(HearthError, ValueError):
    """The budget file is unreadable or has unknown keys / bad values."""


@dataclass(frozen=True)
class BudgetSpec:
    key: str  # key in budgets.toml
    metric: str  # metric name in the eval result (size or metrics section)
    op: str  # "<=" (a maximum) or ">=" (a minimum)
    unit: str
    lo: float | None = None  # allowed range of the budget value itself
    hi: float | None = None


BUDGETS: dict[str, BudgetSpec] = {
    s.key: s
    for s in [
        BudgetSpec("max_package_mb", "package_mb", "<=", "MiB", lo=0),
        BudgetSpec("max_ppl_increase_pct", "ppl_increase_pct", "<=", "%"),
        BudgetSpec("min_cosine", "cosine", ">=", "", lo=-1, hi=1),
        BudgetSpec("max_first_load_bytes", "first_load_bytes", "<=", "bytes", lo=0),
        BudgetSpec("min_top1_agreement", "top1_agreement", ">=", "", lo=0, hi=1),
    ]
}


@dataclass
class Check:
    key: str
    metric: str
    op: str
    budget: float
    value: float | None  # None: not measured for this package kind
    status: str  # "pass", "FAIL", "not measured"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_budget(path: Path) -> dict[str, float]:
    """Parse and validate a budget file; raises BudgetError naming every problem."""
    path = Path(path)
    if not path.is_file():
        raise BudgetError(f"budget file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise BudgetError(f"{path} is not valid TOML: {e}") from e
    return validate_budget(doc, str(path))


def validate_budget(doc: dict[str, Any], where: str = "budget") -> dict[str, float]:
    unknown = sorted(set(doc) - set(BUDGETS))
    if unknown:
        raise BudgetError(f"{where}: unknown budget key(s) {', '.join(unknown)}; valid keys: {', '.join(BUDGETS)}")
    out: dict[str, float] = {}
    for key, value in doc.items():
        spec = BUDGETS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BudgetError(f"{where}: {key} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise BudgetError(f"{where}: {key} must be finite, got {value}")
        if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
            raise BudgetError(f"{where}: {key} = {value} is outside [{spec.lo}, {spec.hi}]")
        out[key] = value
    return out


def budget_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The flat metric values budgets are checked against (size + quality sections)."""
    return {**result.get("size", {}), **result.get("metrics", {})}


def check_budget(budget: dict[str, float], result: dict[str, Any]) -> list[Check]:
    values = budget_metrics(result)
    checks = []
    for key, limit in budget.items():
        spec = BUDGETS[key]
        value = values.get(spec.metric)
        if value is None:
            status = "not measured"
        else:
            value = float(value)
            ok = value <= limit if spec.op == "<=" else value >= limit  # NaN compares False: fails
            status = "pass" if ok else "FAIL"
        checks.append(Check(key, spec.metric, spec.op, limit, value, status))
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "FAIL"]
