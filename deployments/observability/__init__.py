"""What a live deployment does: its metrics (metrics.py: scraped, or from Prometheus), its
prediction log read back (prediction_log.py) and the drift of its inputs (drift.py). Pure
arithmetic lives in series.py and drift.py's compare functions; tasks and views stay thin."""

from __future__ import annotations

from deployments import constants as st


def window_seconds(raw: str | None, default: str) -> int:
    """A window parameter ("15m", "24h", ...) in seconds; ValueError naming the choices."""
    value = (raw or default).strip()
    if value not in st.WINDOWS:
        raise ValueError(f"use one of {', '.join(st.WINDOWS)} (got {value[:20]!r})")
    return st.WINDOWS[value]
