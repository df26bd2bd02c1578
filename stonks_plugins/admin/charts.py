"""The console's charts: server-rendered SVG (no scripts, no external libraries). Each
function computes geometry only; the plugin page's templates draw it
(``admin/stonks_plugins/plugin/``: ``_metrics_chart.html``, ``_history_chart.html`` and the
health section of ``_console.html``)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ..models import HealthCheck


def failed_calls(stats: dict[str, Any]) -> int:
    """Errors and timeouts of one operation's counters: what the charts call errors."""
    return int(stats.get("errors", 0)) + int(stats.get("timeouts", 0))


def metrics_chart(operations: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Bars per operation: calls and errors on one scale, average and max latency on
    another. Geometry only; ``_metrics_chart.html`` draws it."""
    if not operations:
        return None
    label_w, bar_w, gap, row_h, top = 170, 210, 40, 30, 26
    max_calls = max(max(s["calls"], failed_calls(s)) for _, s in operations) or 1
    max_ms = max(float(s["max_ms"]) for _, s in operations) or 1.0
    x_lat = label_w + bar_w + gap
    rows = []
    for i, (op, s) in enumerate(operations):
        y = top + i * row_h
        widths = {
            "calls_w": bar_w * s["calls"] / max_calls,
            "errors_w": bar_w * failed_calls(s) / max_calls,
            "avg_w": bar_w * float(s["avg_ms"]) / max_ms,
            "max_w": bar_w * float(s["max_ms"]) / max_ms,
        }
        rows.append(
            {
                "op": op,
                "y": y,
                "y2": y + 12,
                "ty": y + 12,
                "calls": s["calls"],
                "errors": failed_calls(s),
                "avg_ms": round(float(s["avg_ms"]), 3),
                "max_ms": round(float(s["max_ms"]), 3),
                **{k: round(w, 1) for k, w in widths.items()},
                "calls_tx": round(label_w + max(widths["calls_w"], widths["errors_w"]) + 4, 1),
                "lat_tx": round(x_lat + max(widths["avg_w"], widths["max_w"]) + 4, 1),
            }
        )
    return {
        "width": x_lat + bar_w + 90,
        "height": top + len(rows) * row_h + 6,
        "label_w": label_w,
        "x_calls": label_w,
        "x_lat": x_lat,
        "bar_w": bar_w,
        "rows": rows,
        "max_calls": max_calls,
        "max_ms": round(max_ms, 3),
    }


def history_chart(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Calls (bars) and errors (overlaid bars) per minute on one scale, average latency (a
    line) on another; the shared time series of every process. Geometry only;
    ``_history_chart.html`` draws it. ``None`` when nothing ran in the window."""
    if not points or not any(p["calls"] or p["errors"] for p in points):
        return None
    left, top, height, step, right = 44, 22, 110, 8, 52
    max_calls = max(max(p["calls"], p["errors"]) for p in points) or 1
    max_ms = max(float(p["avg_ms"]) for p in points) or 1.0
    base = top + height
    bars, line = [], []
    for i, p in enumerate(points):
        x = left + i * step
        calls_h = height * p["calls"] / max_calls
        errors_h = height * p["errors"] / max_calls
        avg = float(p["avg_ms"])
        at = timezone.localtime(p["minute"]).strftime("%H:%M")
        bars.append(
            {
                "x": x,
                "at": at,
                "calls": p["calls"],
                "errors": p["errors"],
                "avg_ms": round(avg, 3),
                "max_ms": round(float(p["max_ms"]), 3),
                "calls_y": round(base - calls_h, 1),
                "calls_h": round(calls_h, 1),
                "errors_y": round(base - errors_h, 1),
                "errors_h": round(errors_h, 1),
            }
        )
        if p["calls"]:
            line.append(f"{x + step / 2:g},{round(base - height * avg / max_ms, 1):g}")
    width = left + len(points) * step + right
    return {
        "width": width,
        "height": base + 18,
        "left": left,
        "top": top,
        "base": base,
        "step": step - 2,
        "x_end": left + len(points) * step,
        "bars": bars,
        "line": " ".join(line),
        "max_calls": max_calls,
        "max_ms": round(max_ms, 3),
        "first": bars[0]["at"],
        "last": bars[-1]["at"],
        "total_calls": sum(p["calls"] for p in points),
        "total_errors": sum(p["errors"] for p in points),
        "minutes": len(points),
    }


def health_chart(checks: list[HealthCheck]) -> dict[str, Any] | None:
    """One bar per check, oldest first: its height is how long it took, its colour the
    status — latency and health over time."""
    if not checks:
        return None
    ordered = sorted(checks, key=lambda c: (c.created_at, c.id))
    height, top, bottom, left = 120, 10, 20, 64
    slot = max(6, min(24, 600 // len(ordered)))
    width = max(320, left + len(ordered) * slot + 10)
    peak = max(c.duration_ms for c in ordered) or 1.0
    bars = []
    for i, c in enumerate(ordered):
        h = max(2.0, (height - top - bottom) * c.duration_ms / peak)
        bars.append(
            {
                "x": left + i * slot,
                "y": round(height - bottom - h, 1),
                "w": slot - 2,
                "h": round(h, 1),
                "status": c.status,
                "ms": round(c.duration_ms, 2),
                "at": c.created_at,
            }
        )
    return {
        "width": width,
        "end": max(left + len(bars) * slot, left + 90),  # "oldest" and "latest" apart
        "height": height,
        "base": height - bottom,
        "top": top,
        "left": left,
        "peak": round(peak, 2),
        "bars": bars,
    }
