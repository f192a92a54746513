"""``seccomp-operator diff A B``: per architecture, what one profile allows or denies and the other not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seccomp_operator import syscalls
from seccomp_operator.diff import compare, verdict
from seccomp_operator.spec import ProfileSpec, SyscallArg, SyscallRule
from tests.clitools import Run, run_cli
from tests.conftest import CASES

X86_64 = "SCMP_ARCH_X86_64"


@pytest.fixture
def diff(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def run(*args: str | Path) -> Run:
        return run_cli(["diff", *(str(a) for a in args)], capsys, monkeypatch)

    return run


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def allow_list(*names: str, errno: int | None = None, arches: tuple[str, ...] = (X86_64,)) -> dict[str, Any]:
    doc: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": list(arches)}
    if errno is not None:
        doc["defaultErrnoRet"] = errno
    doc["syscalls"] = [{"names": list(names), "action": "SCMP_ACT_ALLOW"}]
    return doc


def test_same_profile_in_two_formats_is_equal(diff, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = write(tmp_path, "a.json", allow_list("read", "write", "exit_group"))
    b = tmp_path / "b.yaml"
    b.write_text(
        "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: b}\n"
        "spec:\n  defaultAction: SCMP_ACT_ERRNO\n  defaultErrnoRet: 1\n  architectures: [SCMP_ARCH_X86_64]\n"
        "  syscalls:\n  - {action: SCMP_ACT_ALLOW, names: [exit_group]}\n"
        "  - {action: SCMP_ACT_ALLOW, names: [write, read]}\n"
    )
    run = diff(a, b)
    assert run.code == 0
    known = sum(1 for n in syscalls.syscall_names() if syscalls.resolve(n, X86_64) is not None)
    assert f"SCMP_ARCH_X86_64: same outcome for all {known} syscalls" in run.out


def test_allowed_denied_and_errno_differences(diff, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = write(tmp_path, "a.json", allow_list("read", "write", "mount"))
    b = write(tmp_path, "b.json", allow_list("read", "write", "unshare", "setns", errno=38))
    run = diff(a, b)
    assert run.code == 1
    assert "allowed by A, denied by B (1): mount" in run.out
    assert "allowed by B, denied by A (2): setns, unshare" in run.out
    assert (
        "denied by both, differently (" in run.out and "A SCMP_ACT_ERRNO(1), B SCMP_ACT_ERRNO(38)" in run.out
    )
    doc = json.loads(diff("--output", "json", a, b).out)
    assert doc["equal"] is False
    (x86,) = doc["architectures"]
    assert x86["architecture"] == X86_64
    assert x86["allowedOnlyByA"] == ["mount"] and x86["allowedOnlyByB"] == ["setns", "unshare"]
    assert "ptrace" in x86["deniedDifferently"] and x86["same"] == 2


def test_architectures_only_one_side_lists(diff, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = write(tmp_path, "a.json", allow_list("read", arches=(X86_64,)))
    b = write(tmp_path, "b.json", allow_list("read", arches=(X86_64, "SCMP_ARCH_X86")))
    run = diff(a, b)
    assert run.code == 1
    assert "SCMP_ARCH_X86: only B lists SCMP_ARCH_X86" in run.out
    assert "SCMP_ARCH_X86_64: same outcome" in run.out


def test_select_documents_and_bases(diff) -> None:  # type: ignore[no-untyped-def]
    (source,) = CASES.glob("010-*")
    path = source / "input.cr.yaml"
    run = diff(f"{path}#agent-app", f"{path}#runc-base-old")
    assert run.code == 1
    line = next(x for x in run.out.splitlines() if "allowed by A, denied by B" in x)
    for name in ("accept4", "bind", "bpf", "perf_event_open", "socket"):
        assert name in line
    assert "allowed by B, denied by A" not in run.out  # the app includes its base


def test_bad_input_exit_2(diff, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = write(tmp_path, "a.json", allow_list("read"))
    bad = write(tmp_path, "bad.json", {"defaultAction": "SCMP_ACT_ALOW"})
    run = diff(a, bad)
    assert run.code == 2 and not run.out
    assert 'ERROR defaultAction: "SCMP_ACT_ALOW" is not an OCI seccomp action' in run.err
    missing = diff(a, tmp_path / "missing.json")
    assert missing.code == 2 and "cannot read" in missing.err


def test_verdicts_as_runc_builds_the_filter() -> None:
    kill = ProfileSpec(default_action="SCMP_ACT_KILL")
    kill_thread = ProfileSpec(default_action="SCMP_ACT_KILL_THREAD")
    assert verdict(kill, "read") == verdict(kill_thread, "read")
    eperm = ProfileSpec(default_action="SCMP_ACT_ERRNO")
    assert verdict(eperm, "read").text == "SCMP_ACT_ERRNO(1)"
    clone = SyscallRule(
        names=("clone",),
        action="SCMP_ACT_ALLOW",
        args=(SyscallArg(index=0, value=0x7E020000, value_two=0, op="SCMP_CMP_MASKED_EQ"),),
    )
    conditional = ProfileSpec(default_action="SCMP_ACT_ERRNO", syscalls=(clone,))
    got = verdict(conditional, "clone")
    assert got.kind == "conditional"
    assert got.text == "SCMP_ACT_ALLOW if arg0 & 0x7e020000 == 0x0, else SCMP_ACT_ERRNO(1)"
    both = ProfileSpec(
        default_action="SCMP_ACT_ERRNO",
        syscalls=(clone, SyscallRule(names=("clone",), action="SCMP_ACT_ALLOW")),
    )
    assert verdict(both, "clone").text == "SCMP_ACT_ALLOW"  # the unconditional rule wins
    redundant = ProfileSpec(
        default_action="SCMP_ACT_ERRNO",
        syscalls=(SyscallRule(names=("read",), action="SCMP_ACT_ERRNO", errno_ret=1),),
    )
    assert verdict(redundant, "read") == verdict(eperm, "read")
    result = compare(eperm, redundant, fallback_arch=X86_64)
    assert result.equal and result.arches[0].arch == X86_64
