"""What a metric or probe returned, checked before it reaches a row: every declared column gets a
float (NaN where the plugin gave none or something else), and every departure from the contract
is a reason in the row's note that names the metric or probe, so that one plugin's mistake is
seen without hiding the other metrics' values."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PICTURE_SUFFIX = ".png"


def _kind(value: Any) -> str:
    """A value's type in words, with a short look at it: ``str 'abc'``, ``torch.Tensor``."""
    tp = type(value)
    name = tp.__name__ if tp.__module__ == "builtins" else f"{tp.__module__.split('.')[0]}.{tp.__name__}"
    if isinstance(value, (str, bytes)):
        return f"{name} {value[:20]!r}"
    return name


def number_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a table's number, or None. Python and NumPy reals are numbers; a
    bool, a string and a tensor are not (a tensor's ``.item()`` is: it says where it is read)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (return .item())" if hasattr(value, "item") and hasattr(value, "shape") else ""
        return f"a {_kind(value)}, not a float{hint}"
    return None


def checked_values(
    owner: str, columns: Sequence[str], values: Any, notes: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, str]]:
    """``(values, notes)`` for every declared column of ``owner`` (``"metric ink"``): the float it
    returned, or NaN with the reason: the plugin's own note, else what was wrong (not returned,
    NaN without a reason, not a number). Undeclared columns are dropped, with a note under the
    owner's name."""
    out: dict[str, float] = {}
    reasons: dict[str, str] = {}
    if not isinstance(values, Mapping):
        why = f"{owner} returned a {_kind(values)}, not a mapping of column to float"
        return {c: math.nan for c in columns}, {c: why for c in columns}
    for column in columns:
        given = notes.get(column)
        if column not in values:
            out[column] = math.nan
            reasons[column] = given or f"{owner} did not return it"
            continue
        problem = number_problem(values[column])
        if problem:
            out[column] = math.nan
            reasons[column] = f"{owner} returned {problem}"
            continue
        out[column] = float(values[column])
        if given:
            reasons[column] = given
        elif math.isnan(out[column]):
            reasons[column] = f"{owner} returned NaN without a reason (give one in notes)"
    undeclared = [str(k) for k in values if k not in columns]
    if undeclared:
        reasons[owner] = (
            f"returned undeclared column(s) {', '.join(sorted(undeclared))}, ignored (declared: {', '.join(columns)})"
        )
    return out, reasons


def add_note(notes: dict[str, str], key: str, reason: str) -> None:
    """One more reason under ``key`` (an owner may have several)."""
    notes[key] = f"{notes[key]}; {reason}" if key in notes else reason


def picture_problem(name: Any, data: Any) -> str | None:
    """Why ``name: data`` is not a picture a run can keep (a plain ``.png`` file name and PNG bytes)."""
    if (
        not isinstance(name, str)
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or not name.endswith(PICTURE_SUFFIX)
    ):
        return f"picture name {name!r} is not a plain file name ending in {PICTURE_SUFFIX}"
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == PNG_SIGNATURE:
        return f"picture {name} is a {_kind(data)}, not PNG bytes (ganbench.pictures draws them)"
    return None
