"""
Draw the default retry schedule over time, and the probes of a 12-hour outage, as an SVG.

Run from the repository root to write ``docs/howto/retry-schedule.svg`` (the test suite
checks that the committed picture is what this draws from the library's defaults)::

    python docs/howto/retry_schedule.py

>>> svg = draw()
>>> svg.startswith("<svg") and "10h35m" in svg
True
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from pendo_webhooks.retry import OutagePolicy, RetryPolicy


OUT = Path(__file__).with_name("retry-schedule.svg")
WIDTH, LEFT, RIGHT = 760, 150, 30
HOURS = 12.5


def _x(at: timedelta) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * at.total_seconds() / (HOURS * 3600)


def _label(at: timedelta) -> str:
    seconds = round(at.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m" + (f"{seconds % 60:02d}s" if seconds % 60 else "")
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def attempt_times(policy: RetryPolicy) -> list[timedelta]:
    """
    When each attempt of a delivery that keeps failing starts, jitter aside.

    >>> [str(t) for t in attempt_times(RetryPolicy())]
    ['0:00:00', '0:00:30', '0:05:30', '0:35:30', '2:35:30', '10:35:30']
    """
    times, at = [timedelta(0)], timedelta(0)
    for number in range(1, policy.max_retries + 1):
        at += policy.wait(number, rng=lambda low, high: (low + high) / 2)
        times.append(at)
    return times


def probe_times(policy: OutagePolicy, span: timedelta) -> list[timedelta]:
    """
    When the probes of an outage declared at 0 go out, for *span*.

    >>> [int(t.total_seconds() // 60) for t in probe_times(OutagePolicy(), timedelta(hours=1))]
    [1, 3, 7, 15, 30, 45, 60]
    """
    times, at, failed = [], policy.probe_wait(0), 0
    while at <= span:
        times.append(at)
        failed += 1
        at += policy.probe_wait(failed)
    return times


def draw() -> str:
    """
    The SVG: one row for a delivery's attempts, one for an outage's probes.
    """
    attempts = attempt_times(RetryPolicy())
    probes = probe_times(OutagePolicy(), timedelta(hours=12))
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="220" '
            f'viewBox="0 0 {WIDTH} 220" font-family="sans-serif" font-size="12">'
        ),
        '<rect width="100%" height="100%" fill="white"/>',
        (
            '<text x="10" y="22" font-size="14" font-weight="bold">'
            "The default retry schedule over 12 hours</text>"
        ),
    ]
    for hour in range(13):
        x = _x(timedelta(hours=hour))
        parts.append(f'<line x1="{x:.1f}" y1="40" x2="{x:.1f}" y2="185" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="202" text-anchor="middle">{hour} h</text>')
    parts.append('<text x="10" y="75">one delivery,</text>')
    parts.append('<text x="10" y="90">every attempt failing</text>')
    parts.append(f'<line x1="{LEFT}" y1="80" x2="{WIDTH - RIGHT}" y2="80" stroke="#888"/>')
    early = [at for at in attempts if at < timedelta(hours=1)]
    for number, at in enumerate(attempts, start=1):
        x = _x(at)
        parts.append(f'<circle cx="{x:.1f}" cy="80" r="4" fill="#c0392b"/>')
        if at >= timedelta(hours=1):
            label = f"#{number} at {_label(at)}"
            parts.append(f'<text x="{x:.1f}" y="64" text-anchor="middle">{label}</text>')
    first = ", ".join(_label(at) for at in early)
    parts.append(f'<text x="{LEFT}" y="104">#1 to #{len(early)} in the first hour: {first}</text>')
    parts.append('<text x="10" y="145">a 12-hour outage:</text>')
    parts.append('<text x="10" y="160">one probe at a time</text>')
    parts.append(f'<line x1="{LEFT}" y1="150" x2="{WIDTH - RIGHT}" y2="150" stroke="#888"/>')
    for at in probes:
        x = _x(at)
        parts.append(f'<line x1="{x:.1f}" y1="142" x2="{x:.1f}" y2="158" stroke="#2471a3"/>')
    parts.append(
        f'<text x="{LEFT}" y="178">{len(probes)} probes (1, 2, 4, 8 min apart, then every 15 min);'
        " the other deliveries wait, spending no attempt</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    """
    Write the picture next to this script.
    """
    OUT.write_text(draw(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
