"""What ``check`` reports: findings (errors and warnings, each at a line) and their report."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

__all__ = ["Finding", "Report"]


@dataclass(frozen=True)
class Finding:
    """One problem (``severity`` "error") or one thing to know (``severity`` "warning")."""

    severity: str
    kind: str  # the error's class name, or the warning's name
    message: str
    function: str
    filename: str = ""
    line: int = 0
    col: int = 0  # 0-based
    text: str = ""  # the user's line

    def __str__(self) -> str:
        head = f"{self.severity}: {self.message}"
        if not self.line:
            return head
        stripped = self.text.strip()
        indent = len(self.text) - len(self.text.lstrip())
        caret = " " * max(self.col - indent, 0) + "^"
        return f"{head}\n  File \"{self.filename}\", line {self.line}, in {self.function}\n" \
               f"    {stripped}\n    {caret}"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Report:
    """What ``check`` found: ``ok`` when nothing stops differentiation (warnings may remain)."""

    functions: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        parts = [str(f) for f in self.findings]
        checked = ", ".join(self.functions)
        parts.append(f"{checked}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n\n".join(parts)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "functions": list(self.functions),
                "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [f.as_dict() for f in self.findings]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)
