"""Steps done so far, undone in reverse when a later step fails."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cni_hwol.cni.errors import CNIError

log = logging.getLogger(__name__)


class Rollback:
    """Collect an undo action after each step; run them all, newest first, on error.

    with Rollback() as undo:
        write_record(); undo.push_record("forget the record", forget)
        do_a(); undo.push("undo a", undo_a)
        do_b(); undo.push("undo b", undo_b)
        undo.commit()          # success: forget the undo actions

    A record's undo (forgetting a state file or a claim) runs only when every
    undo pushed after it succeeded: whatever could not be undone stays on
    record, so the runtime's DEL finds it and finishes the job.
    """

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[..., Any], tuple[Any, ...], bool]] = []

    def push(self, description: str, action: Callable[..., Any], *args: Any) -> None:
        self._steps.append((description, action, args, False))

    def push_record(self, description: str, action: Callable[..., Any], *args: Any) -> None:
        self._steps.append((description, action, args, True))

    def commit(self) -> None:
        self._steps.clear()

    def run(self) -> list[str]:
        """Undo everything; a failing undo is logged and the rest still run."""
        failures = []
        while self._steps:
            description, action, args, forgets_a_record = self._steps.pop()
            if forgets_a_record and failures:
                log.warning("rollback: not done, so DEL can finish what failed: %s", description)
                continue
            try:
                action(*args)
            except Exception as exc:  # noqa: BLE001 - every undo must get its chance
                log.error("rollback: %s failed: %s", description, exc)
                failures.append(f"{description}: {exc}")
            else:
                log.debug("rollback: %s", description)
        return failures

    def __enter__(self) -> Rollback:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            return
        failures = self.run()
        if failures and isinstance(exc, CNIError):
            kept = "not undone, kept on record for DEL: " + "; ".join(failures)
            exc.details = f"{exc.details}; {kept}" if exc.details else kept
