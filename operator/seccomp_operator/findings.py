"""Findings: what validation says about a profile, in the user's terms.

A finding names the field (``spec.syscalls[2].names[0]``), says what is wrong and,
where possible, what to write instead.  Errors stop a profile from being written
anywhere; warnings and infos travel with it (admission warnings, status, lint).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """How bad a finding is.  ``error`` blocks rendering; the others do not."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one field.

    Attributes:
        severity: error, warning or info.
        path: the field, as written in the resource (``spec.syscalls[0].action``);
            for a bare profile JSON the ``spec.`` prefix is omitted.
        message: what is wrong, in the user's terms.
        hint: what to write instead; empty when there is nothing to suggest.
    """

    severity: Severity
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = (
            f"{self.severity.upper()} {self.path}: {self.message}"
            if self.path
            else (f"{self.severity.upper()} {self.message}")
        )
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form: ``{"severity", "path", "message", "hint"}``."""
        return {"severity": str(self.severity), "path": self.path, "message": self.message, "hint": self.hint}


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings of severity ``error``, in order."""
    return [f for f in findings if f.severity is Severity.ERROR]


def warnings(findings: Iterable[Finding]) -> list[Finding]:
    """The findings of severity ``warning``, in order."""
    return [f for f in findings if f.severity is Severity.WARNING]


def summary(findings: Iterable[Finding], limit: int = 5) -> str:
    """One line for a status message or an event: the first ``limit`` findings joined by ``; ``."""
    items = list(findings)
    text = "; ".join(str(f) for f in items[:limit])
    if len(items) > limit:
        text += f"; and {len(items) - limit} more"
    return text


class ProfileError(Exception):
    """A profile that must not be written.

    Attributes:
        findings: every finding (errors first), at least one error.
        reason: a condition reason, ``InvalidSpec`` or ``BaseProfileMissing``.
    """

    def __init__(self, findings: Iterable[Finding], reason: str = "InvalidSpec") -> None:
        self.findings = sorted(findings, key=lambda f: f.severity is not Severity.ERROR)
        self.reason = reason
        super().__init__(summary(self.findings))


class BaseProfileMissing(ProfileError):
    """``baseProfileName`` names a profile that does not exist (yet): the profile stays Pending."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        super().__init__(findings, reason="BaseProfileMissing")
