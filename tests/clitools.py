"""Running the ``seccomp-operator`` CLI in-process for the offline-tool tests (lint, convert, diff)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from seccomp_operator import cli

#: The subcommands of issue 3 (cli.EXTRA_COMMANDS also lists other tools; these tests do not
#: depend on those modules being importable).
TOOLS = ("lint", "convert", "diff")


@dataclass(frozen=True)
class Run:
    """Exit code and captured output of one CLI call."""

    code: int
    out: str
    err: str


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``cli.main(argv)`` with the real parser (our subcommands registered), output captured.

    Also asserts what every call must satisfy: an exit code of 0, 1 or 2 and no traceback.
    """
    monkeypatch.setattr(cli, "EXTRA_COMMANDS", TOOLS)
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code in (0, 1, 2), code
    assert "Traceback" not in captured.out + captured.err
    return Run(code, captured.out, captured.err)
