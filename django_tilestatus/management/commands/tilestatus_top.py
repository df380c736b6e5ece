"""``manage.py tilestatus_top``: a live terminal view of the tile processes and layers."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...reading.current import current_report
from ...reading.report import BUSY, EXITED, GONE, STATES, Report
from ...recording.vocabulary import clean
from ...seeding.report import recent_jobs, seeding_dicts, text_lines
from ...storage import StoreUnavailable

#: Process rows shown at most; the rest are counted.
MAX_ROWS = 20
#: Clears a terminal and puts the cursor home (only written to a terminal).
CLEAR = "\x1b[H\x1b[2J"


#: What ``screen`` asks its painter to colour besides process states.
HEADING = "heading"


def screen(report: Report, paint: Callable[[str, str], str]) -> str:
    """One screen, at most 80 columns wide; ``paint(text, kind)`` colours a line."""
    counts = "  ".join(f"{report.counts.get(state, 0)} {state}" for state in STATES)
    title = f"tilestatus_top  {report.read_at:%H:%M:%S} UTC  processes: {counts}"
    lines = [paint(title, HEADING), ""]
    lines.append(paint(f"{'HOST':<14} {'PID':>7}  {'STATE':<36} {'LAST EVENT':>18}", HEADING))
    for row in report.processes[:MAX_ROWS]:
        # The state and how many requests it has; each request is on a line of its own below.
        text = row.state + (f" ({len(row.requests)})" if row.requests else "")
        text += " SLOW" if row.slow else ""
        line = f"{clean(row.host, 14):<14} {row.pid:>7}  {clean(text, 36):<36} {row.ago:>14} ago"
        lines.append(paint(line, "slow" if row.slow else row.state))
        for request in row.listed_requests:  # each request in flight, or the ones it died on
            kind = "slow" if request.slow else row.state
            lines.append(paint(f"{'':>24}{clean(request.text, 56)}", kind))
            if request.lock_state is not None:  # the request's line is cut: the holder
                lines.append(paint(f"{'':>26}{clean(request.lock_state.short_text, 54)}", kind))
        if row.requests_not_listed:
            lines.append(f"{'':>24}({row.requests_not_listed} more requests in flight)")
    more = len(report.processes) - MAX_ROWS + report.hidden_total
    if more > 0:
        lines.append(f"  ({more} more processes not listed)")
    if not report.processes:
        lines.append("  (no process has recorded anything lately)")
    if report.skipped:
        lines.append(f"  ({report.skipped_text})")
    lines.append("")
    if report.tiles is not None:
        lines += report.tiles.text_lines()
    seeding = text_lines(recent_jobs())
    if seeding:
        lines += ["", *seeding]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "A live view of the tile processes (state, each request in flight) and of each layer "
        "(requests per minute, hit ratio, latencies, errors over 5 and 60 minutes), "
        "cluster-wide, from the same data as the status page. Redrawn every --interval "
        "seconds until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=2.0,
            metavar="SECONDS",
            help="Seconds between redraws (default 2).",
        )
        parser.add_argument("--once", action="store_true", help="Print one screen and exit.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the status page's JSON format instead (one document per redraw).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"]
        if not (math.isfinite(interval) and interval > 0):
            raise CommandError("--interval must be a positive number of seconds.")
        live = not options["once"]
        terminal = self.stdout.isatty()
        try:
            while True:
                try:
                    report = current_report()
                except StoreUnavailable as exc:
                    if not live:
                        raise CommandError(f"Tile status cannot be read: {exc}.") from None
                    self.stderr.write(f"Tile status cannot be read: {exc}; retrying.")
                else:
                    if options["json"]:
                        value = {**report.as_dict(), "seeding": seeding_dicts(recent_jobs())}
                        self.stdout.write(json.dumps(value, allow_nan=False))
                    else:
                        self.stdout.write(
                            (CLEAR if live and terminal else "") + screen(report, self._paint)
                        )
                if not live:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            self.stdout.write("")  # leave the prompt on a line of its own

    def _paint(self, text: str, state: str) -> str:
        """Colour a line by kind; Django's styles are plain off a terminal or with --no-color."""
        style = {
            HEADING: self.style.MIGRATE_HEADING,
            "slow": self.style.ERROR,
            GONE: self.style.ERROR,
            BUSY: self.style.WARNING,
            EXITED: self.style.NOTICE,
        }.get(state)
        return style(text) if style is not None else text
