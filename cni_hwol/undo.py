"""Steps done so far, undone in reverse when a later step fails."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Rollback:
    """Collect an undo action after each step; run them all, newest first, on error.

    with Rollback() as undo:
        do_a(); undo.push("undo a", undo_a)
        do_b(); undo.push("undo b", undo_b)
        undo.commit()          # success: forget the undo actions
    """

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []

    def push(self, description: str, action: Callable[..., Any], *args: Any) -> None:
        self._steps.append((description, action, args))

    def commit(self) -> None:
        self._steps.clear()

    def run(self) -> list[str]:
        """Undo everything; a failing undo is logged and the rest still run."""
        failures = []
        while self._steps:
            description, action, args = self._steps.pop()
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
        if exc_type is not None:
            self.run()
