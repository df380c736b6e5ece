"""``manage.py tilestatus_purge``: delete the statuses of tile processes that are gone."""

from __future__ import annotations

import math
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import conf
from ...reading.liveness import DeathPolicy
from ...recording.vocabulary import nice_time
from ...runtime import get_store
from ...storage import StoreUnavailable
from ...storage.redis_store import describe_member


def _plural(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


class Command(BaseCommand):
    help = (
        "Delete the recorded statuses of dead tile processes. On this host a process is "
        "dead when its PID no longer runs or now belongs to a newer process, however "
        "recently it was seen; on other hosts, when it has been silent for longer than "
        "PURGE_AFTER (or --older-than). Registry entries whose messages have expired go too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be deleted, and delete nothing.",
        )
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="SECONDS",
            help="Silence after which a process of another host counts as dead "
            "(default: the PURGE_AFTER setting).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = conf.get_config()
        older_than = options["older_than"]
        silence = config.purge_after if older_than is None else older_than
        if not (math.isfinite(silence) and silence > 0):
            raise CommandError("--older-than must be a positive number of seconds.")
        dry_run = options["dry_run"]
        verbosity = options["verbosity"]

        # The purge was asked for: a dead process of this host goes whatever its age.
        policy = DeathPolicy(config.host, silence, local_after=0.0)
        try:
            store = get_store()
            now = time.time()
            registry = store.registry()
            listed = registry.entries
            has_log = store.have_logs([(host, pid) for host, pid, _ in listed])
            doomed: list[tuple[str, int, float, str | None]] = []
            kept: list[tuple[str, int, float, str | None]] = []
            for (host, pid, seen), logged in zip(listed, has_log, strict=True):
                reason = policy.why_delete(host, pid, seen, now, has_log=logged)
                (doomed if reason else kept).append((host, pid, seen, reason))
            if (doomed or registry.malformed) and not dry_run:
                store.delete([(host, pid) for host, pid, _, _ in doomed], registry.malformed)
        except StoreUnavailable as exc:
            raise CommandError(f"Redis cannot be reached: {exc}.") from exc

        verb = "Would delete" if dry_run else "Deleted"
        if verbosity >= 1:
            for member in registry.malformed:
                self.stdout.write(
                    f"{verb} malformed registry entry {describe_member(member)!r}: "
                    "it names no process"
                )
            for host, pid, _seen, reason in doomed:
                self.stdout.write(f"{verb} {host} PID {pid}: {reason}")
        if verbosity >= 2:
            for host, pid, seen, _ in kept:
                self.stdout.write(f"Kept {host} PID {pid}: last seen {nice_time(now - seen)} ago")
        if verbosity >= 1:
            self.stdout.write(
                self._summary(len(doomed), len(registry.malformed), len(kept), dry_run)
            )
            if registry.skipped:
                self.stdout.write(
                    self.style.WARNING(
                        f"Skipped {registry.skipped} unreadable entry: the registry of "
                        "processes is a key of another type than a sorted set (delete it "
                        "to start it again)."
                    )
                )

    def _summary(self, doomed: int, malformed: int, kept: int, dry_run: bool) -> str:
        if not doomed and not malformed:
            return self.style.SUCCESS(f"Nothing to delete; kept {_plural(kept)}.")
        what = _plural(doomed)
        if malformed:
            what += f" and {malformed} malformed {'entry' if malformed == 1 else 'entries'}"
        if dry_run:
            return self.style.WARNING(
                f"Would delete {what} and keep {kept} (dry run: nothing was deleted)."
            )
        return self.style.SUCCESS(f"Deleted {what}, kept {kept}.")
