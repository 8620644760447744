"""Checks and their report: human lines or --json, exit 0 only when all passed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # what to do when not ok, or about a warning
    warning: bool = False  # passed, but something the operator should see (shown as WARN)


@dataclass
class Report:
    command: str
    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # command-specific findings

    def add(self, name: str, ok: bool, detail: str, fix: str = "") -> Check:
        check = Check(name, ok, detail, "" if ok else fix)
        self.checks.append(check)
        return check

    def warn(self, name: str, detail: str, fix: str) -> Check:
        """Not a failure (the exit status stays 0): the node works, but not as well as it could."""
        check = Check(name, True, detail, fix, warning=True)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self, as_json: bool) -> str:
        if as_json:
            return json.dumps(
                {"command": self.command, "ok": self.ok, "checks": [asdict(c) for c in self.checks], **self.data},
                indent=1,
            )
        lines = []
        for c in self.checks:
            lines.append(f"[{'WARN' if c.warning else 'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"       fix: {c.fix}")
        failed = sum(1 for c in self.checks if not c.ok)
        warned = sum(1 for c in self.checks if c.warning)
        lines.append(
            f"{self.command}: {len(self.checks) - failed} passed, {failed} failed"
            + (f", {warned} warning(s)" if warned else "")
        )
        return "\n".join(lines)
