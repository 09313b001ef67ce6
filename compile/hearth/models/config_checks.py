"""Type and range checks for config.json values, before any model is built from them.

A float layer count would be truncated by int() (2.5 -> 2 layers, silently), a negative one builds
a package that fails only at load, and `null` or a list gives a bare TypeError: every read here
says which field is wrong and what it must be.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import HearthError

_MISSING = object()


class UnsupportedConfigError(HearthError, ValueError):
    """The checkpoint's config.json uses a feature these model definitions do not implement,
    or holds a value no model can be built from."""


def _bad(key: str, value: Any, want: str) -> UnsupportedConfigError:
    return UnsupportedConfigError(
        f"config.json: {key} is {value!r}; it must be {want}. Fix the checkpoint's config.json"
    )


def config_int(cfg: dict[str, Any], key: str, *, minimum: int = 1, default: Any = _MISSING) -> int:
    """An integer >= minimum (an integral float such as 4.0 is accepted; 2.5, null, "4", true are not)."""
    value = cfg.get(key, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise UnsupportedConfigError(f"config.json has no {key}; it must be an integer >= {minimum}")
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, value, f"an integer >= {minimum}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise _bad(key, value, f"an integer >= {minimum}")
    if value < minimum:
        raise _bad(key, value, f"an integer >= {minimum}")
    return int(value)


def config_float(cfg: dict[str, Any], key: str, default: float, *, positive: bool = True) -> float:
    """A finite number (> 0 when `positive`); `default` when absent or null."""
    value = cfg.get(key)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (positive and value <= 0)
    ):
        raise _bad(key, value, "a finite number > 0" if positive else "a finite number")
    return float(value)


def config_bool(cfg: dict[str, Any], key: str, default: bool) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(key, value, "true or false")
    return value


def check_divisible(a_key: str, a: int, b_key: str, b: int) -> None:
    if a % b:
        raise UnsupportedConfigError(f"config.json: {a_key} {a} is not a multiple of {b_key} {b}")
