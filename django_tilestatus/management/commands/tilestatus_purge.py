"""``manage.py tilestatus_purge``: delete the statuses of tile processes that are gone."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import conf, runtime
from ...reading.deaths import Death, count_deaths
from ...reading.liveness import OTHER_NAMESPACE, DeathPolicy, pid_namespace
from ...recording.recorder import active
from ...recording.vocabulary import nice_time
from ...runtime import get_store
from ...storage import Registry, StatusStore, StoreUnavailable
from ...storage.redis_store import describe_member


def _plural(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


#: A registry entry as judged: ``(host, pid, last seen, why it goes or None)``.
Judged = tuple[str, int, float, str | None]


@dataclass
class _Verdict:
    """The registry as read, the policy that judged it, and its entries doomed or kept."""

    registry: Registry
    policy: DeathPolicy
    doomed: list[Judged] = field(default_factory=list)
    kept: list[Judged] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Delete the recorded statuses of dead tile processes. On this host a process is "
        "dead when its PID no longer runs or now belongs to a newer process, however "
        "recently it was seen; on other hosts, and for processes of this host that "
        "recorded another PID namespace (another container), when it has been silent for "
        "longer than PURGE_AFTER (or --older-than). Registry entries whose messages have "
        "expired go too."
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
            help="Silence after which a process of another host or PID namespace counts "
            "as dead (default: the PURGE_AFTER setting).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = conf.get_config()
        older_than = options["older_than"]
        silence = config.purge_after if older_than is None else older_than
        if not (math.isfinite(silence) and silence > 0):
            raise CommandError("--older-than must be a positive number of seconds.")
        dry_run = options["dry_run"]
        try:
            store = get_store()
            now = time.time()
            verdict = self._judge(store, config.host, silence, now)
            died_on: dict[tuple[str, int], int] = {}
            if verdict.doomed and not dry_run:
                died_on = self._count_deaths(store, verdict.doomed)
            if (verdict.doomed or verdict.registry.malformed) and not dry_run:
                doomed = [(host, pid) for host, pid, _, _ in verdict.doomed]
                store.delete(doomed, verdict.registry.malformed)
        except StoreUnavailable as exc:
            raise CommandError(f"Redis cannot be reached: {exc}.") from exc
        self._print(verdict, died_on, now, dry_run, options["verbosity"])

    def _judge(self, store: StatusStore, this_host: str, silence: float, now: float) -> _Verdict:
        """Every registry entry, doomed or kept, by the one dead-process rule.

        The purge was asked for: a dead process of this host goes whatever its age. A
        PID is judged only in the namespace that sees it; others' by their silence.
        """
        namespace = pid_namespace()
        policy = DeathPolicy(this_host, silence, local_after=0.0, namespace=namespace)
        registry = store.registry()
        listed = registry.entries
        has_log = store.have_logs([(host, pid) for host, pid, _ in listed])
        here = [(host, pid) for host, pid, _ in listed if host == this_host]
        if namespace is not None and here:
            policy = policy.with_namespaces(store.namespaces(here))
        verdict = _Verdict(registry, policy)
        for (host, pid, seen), logged in zip(listed, has_log, strict=True):
            reason = policy.why_delete(host, pid, seen, now, has_log=logged)
            (verdict.doomed if reason else verdict.kept).append((host, pid, seen, reason))
        return verdict

    def _print(
        self,
        verdict: _Verdict,
        died_on: dict[tuple[str, int], int],
        now: float,
        dry_run: bool,
        verbosity: int,
    ) -> None:
        verb = "Would delete" if dry_run else "Deleted"
        if verbosity >= 1:
            for member in verdict.registry.malformed:
                self.stdout.write(
                    f"{verb} malformed registry entry {describe_member(member)!r}: "
                    "it names no process"
                )
            for host, pid, _seen, reason in verdict.doomed:
                counted = died_on.get((host, pid), 0)
                more = f"; counted {counted} of its requests as server errors" if counted else ""
                self.stdout.write(f"{verb} {host} PID {pid}: {reason}{more}")
        if verbosity >= 2:
            for host, pid, seen, _ in verdict.kept:
                other = verdict.policy.other_namespace(host, pid)
                where = f"{OTHER_NAMESPACE}, " if other else ""
                self.stdout.write(
                    f"Kept {host} PID {pid}: {where}last seen {nice_time(now - seen)} ago"
                )
        if verbosity >= 1:
            malformed = len(verdict.registry.malformed)
            self.stdout.write(
                self._summary(len(verdict.doomed), malformed, len(verdict.kept), dry_run)
            )
            if verdict.registry.skipped:
                self.stdout.write(
                    self.style.WARNING(
                        f"Skipped {verdict.registry.skipped} unreadable entry: the registry of "
                        "processes is a key of another type than a sorted set (delete it "
                        "to start it again)."
                    )
                )

    def _count_deaths(self, store: StatusStore, doomed: list[Judged]) -> dict[tuple[str, int], int]:
        """Count what the doomed processes died on (see ``reading.deaths``), before their
        entries go: how many requests each, for those this command counted first."""
        recorder = active()
        in_flight = store.in_flight_of([(host, pid) for host, pid, _, _ in doomed])
        if recorder is None or not in_flight:
            return {}
        runtime.get_server()  # the layers' names label what is counted
        counted = {}
        for host, pid, seen, _ in doomed:
            if (host, pid) in in_flight:
                death = Death(host, pid, seen, in_flight[host, pid])
                counted[host, pid] = count_deaths(store, [death], recorder)
        recorder.flush(timeout=1.0)
        return counted

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
