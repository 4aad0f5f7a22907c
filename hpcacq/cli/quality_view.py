"""The quality lines of ``hpcacq summary`` and the warning of ``hpcacq plot``.

Everything comes from what the writer stores: each result's ``summary`` (the
``summary_json`` attribute: ``fraction_trusted``, ``fraction_<flag>``, ``fraction_nan``
for velocity; ``fraction_flagged``, ``fraction_nan`` for diameter) and the manifest's
outcome message, which for a doubtful OK result reads ``"ok; doubtful: <why>; ..."``
(:func:`hpcacq.analyses.base.ok_message`).
"""

from __future__ import annotations

import math

__all__ = ["DOUBTFUL_PREFIX", "doubtful_reason", "quality_line"]

DOUBTFUL_PREFIX = "ok; doubtful: "


def doubtful_reason(message: str | None) -> str | None:
    """The ``<why>`` of an OK outcome's ``"ok; doubtful: <why>"`` message, else None."""
    if message and message.startswith(DOUBTFUL_PREFIX):
        return message[len(DOUBTFUL_PREFIX):]
    return None


def _pct(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def quality_line(summary: dict, flag_names=()) -> str | None:
    """``"trusted 92.7%, NaN 7.3%; flagged: low_separability 5.7%, ..."`` from a stored
    summary (flags that never fire are left out); None when the summary has no fractions."""
    parts = []
    if "fraction_trusted" in summary:
        parts.append(f"trusted {_pct(summary['fraction_trusted'])}")
    if "fraction_nan" in summary:
        parts.append(f"NaN {_pct(summary['fraction_nan'])}")
    if "fraction_flagged" in summary:  # diameter: any flag
        parts.append(f"any flag {_pct(summary['fraction_flagged'])}")
    flagged = []
    names = list(flag_names) or sorted(k[len("fraction_"):] for k in summary if k.startswith("fraction_"))
    for name in names:
        value = summary.get(f"fraction_{name}")
        if name in ("trusted", "nan", "flagged") or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            continue
        if value > 0:
            flagged.append(f"{name} {_pct(value)}")
    step = summary.get("angle_step_fraction")
    if not parts and not flagged:
        return None
    if isinstance(step, (int, float)) and not math.isnan(step):  # velocity: the grid's resolution
        parts.append(f"speed step {_pct(step) if math.isfinite(step) else 'unbounded'}")
    text = ", ".join(parts)
    if flagged:
        text += ("; " if text else "") + "flagged: " + ", ".join(flagged)
    elif parts and not summary.get("fraction_flagged"):
        text += "; no flag"
    return text
