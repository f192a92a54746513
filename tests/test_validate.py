"""Semantic checks: what runtimes refuse or silently misread, said in the user's terms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from seccomp_operator import syscalls
from seccomp_operator import validate as v
from seccomp_operator.findings import Finding, Severity, errors
from seccomp_operator.spec import ProfileSpec, SyscallArg, SyscallRule
from seccomp_operator.validate import check_mapping, check_profile_json, combine, validate

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
X86_64 = "SCMP_ARCH_X86_64"


def profile(*rules: SyscallRule, **fields: Any) -> ProfileSpec:
    fields.setdefault("default_action", ALLOW)
    return ProfileSpec(syscalls=rules, **fields)


def rule(*names: str, action: str = ERRNO, **fields: Any) -> SyscallRule:
    return SyscallRule(names=names, action=action, **fields)


def by_path(found: list[Finding], severity: Severity = Severity.ERROR) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in found:
        if f.severity is severity:
            assert f.path not in out, f"duplicate {severity} at {f.path}"
            out[f.path] = f
    return out


def test_valid_profile_has_no_findings() -> None:
    spec = profile(
        rule("ptrace", errno_ret=1),
        rule("clone", action=ALLOW, args=(SyscallArg(index=0, value=1, op="SCMP_CMP_EQ"),)),
        architectures=(X86_64,),
        default_action=ERRNO,
        default_errno_ret=38,
    )
    assert validate(spec) == []


# --- names of actions, arches, flags, operators ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "suggestion", "words"),
    [
        ("scmp_act_errno", "SCMP_ACT_ERRNO", "case-sensitive"),
        ("SCMP_ACT_DENY", "SCMP_ACT_ERRNO", "not an OCI seccomp action"),
        (" SCMP_ACT_ALLOW", "SCMP_ACT_ALLOW", "spaces"),
        ("SCMP_ACT_ALLOW\n", "SCMP_ACT_ALLOW", "spaces"),
        ("SCMP_ACT_KILLPROCESS", "SCMP_ACT_KILL_PROCESS", "not an OCI"),
        ("ALLOW", "SCMP_ACT_ALLOW", "not an OCI"),
        ("block", "SCMP_ACT_ERRNO", "not an OCI"),
        ("SCMP_ACT_LOGG", "SCMP_ACT_LOG", "not an OCI"),
    ],
)
def test_action_names_exact_with_suggestion(value: str, suggestion: str, words: str) -> None:
    found = by_path(validate(profile(rule("read", action=value))))
    error = found["spec.syscalls[0].action"]
    assert words in error.message and error.hint == f'did you mean "{suggestion}"?'
    assert by_path(validate(profile(default_action=value)))["spec.defaultAction"].hint == (
        f'did you mean "{suggestion}"?'
    )


@pytest.mark.parametrize(
    ("arch", "suggestion"),
    [
        ("amd64", X86_64),
        ("x86_64", X86_64),
        ("arm64", "SCMP_ARCH_AARCH64"),
        ("SCMP_ARCH_X86_46", X86_64),
        ("scmp_arch_s390x", "SCMP_ARCH_S390X"),
    ],
)
def test_arch_names(arch: str, suggestion: str) -> None:
    error = by_path(validate(profile(architectures=(arch,))))["spec.architectures[0]"]
    assert error.hint == f'did you mean "{suggestion}"?'


def test_arch_support_warnings() -> None:
    found = validate(profile(architectures=("SCMP_ARCH_PARISC", "SCMP_ARCH_LOONGARCH64")))
    assert not errors(found)
    assert "runc does not support" in by_path(found, Severity.WARNING)["spec.architectures[0]"].message
    if not syscalls.arch_known("SCMP_ARCH_LOONGARCH64"):
        assert "does not know" in by_path(found, Severity.INFO)["spec.architectures[1]"].message


def test_flags() -> None:
    found = validate(
        profile(flags=("SECCOMP_FILTER_FLAG_LOGG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "LOG"))
    )
    errs = by_path(found)
    assert errs["spec.flags[0]"].hint == 'did you mean "SECCOMP_FILTER_FLAG_LOG"?'
    assert errs["spec.flags[2]"].hint == 'did you mean "SECCOMP_FILTER_FLAG_LOG"?'
    assert "runc does not know" in by_path(found, Severity.WARNING)["spec.flags[1]"].message


def test_args() -> None:
    args = (
        SyscallArg(index=6, value=1, op="SCMP_CMP_EQ"),
        SyscallArg(index=0, value=-1, op="SCMP_CMP_EQ"),
        SyscallArg(index=1, value=2**64, value_two=-3, op="SCMP_CMP_MASKED"),
        SyscallArg(index=2, value=1, value_two=5, op="SCMP_CMP_NE"),
    )
    found = validate(profile(rule("read", args=args)))
    errs = by_path(found)
    assert set(errs) == {
        "spec.syscalls[0].args[0].index",
        "spec.syscalls[0].args[1].value",
        "spec.syscalls[0].args[2].value",
        "spec.syscalls[0].args[2].valueTwo",
        "spec.syscalls[0].args[2].op",
    }
    assert errs["spec.syscalls[0].args[2].op"].hint == 'did you mean "SCMP_CMP_MASKED_EQ"?'
    assert "valueTwo" in by_path(found, Severity.INFO)["spec.syscalls[0].args[3].valueTwo"].message


def test_huge_numbers_do_not_crash_messages() -> None:
    huge = 10**5000
    found = validate(
        profile(rule("read", errno_ret=-huge, args=(SyscallArg(index=huge, value=huge, op="SCMP_CMP_EQ"),)))
    )
    assert len(errors(found)) == 3
    assert all("bit" in f.message for f in errors(found))


def test_at_most_six_args_and_same_index_warning() -> None:
    args = tuple(SyscallArg(index=0, value=i, op="SCMP_CMP_NE") for i in range(7))
    found = validate(profile(rule("read", args=args)))
    assert "at most 6" in by_path(found)["spec.syscalls[0].args"].message
    assert "OR-ed" in by_path(found, Severity.WARNING)["spec.syscalls[0].args"].message


# --- errno ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "errno_ret", "severity", "words"),
    [
        (ALLOW, 1, Severity.ERROR, "cannot return an errno"),
        ("SCMP_ACT_LOG", 0, Severity.ERROR, "cannot return an errno"),
        (ERRNO, 65536, Severity.ERROR, "16-bit SECCOMP_RET_DATA"),
        (ERRNO, 4095, Severity.ERROR, "libseccomp"),
        (ERRNO, -1, Severity.ERROR, "negative"),
        (ERRNO, 0, Severity.WARNING, "success"),
        ("SCMP_ACT_TRACE", 65537, Severity.ERROR, "16-bit"),
    ],
)
def test_errno_ret(action: str, errno_ret: int, severity: Severity, words: str) -> None:
    found = validate(profile(rule("read", action=action, errno_ret=errno_ret)))
    assert words in by_path(found, severity)["spec.syscalls[0].errnoRet"].message


def test_errno_ret_in_range_ok() -> None:
    assert (
        validate(
            profile(rule("read", errno_ret=4094), rule("write", action="SCMP_ACT_TRACE", errno_ret=5000))
        )
        == []
    )


def test_default_errno_ret() -> None:
    errs = by_path(validate(profile(default_action=ALLOW, default_errno_ret=38)))
    assert "only meaningful with defaultAction" in errs["spec.defaultErrnoRet"].message
    errs = by_path(
        validate(profile(rule("read", action=ALLOW), default_action=ERRNO, default_errno_ret=70000))
    )
    assert "16-bit" in errs["spec.defaultErrnoRet"].message


# --- names ----------------------------------------------------------------------------------------


def test_empty_names_list_and_empty_name() -> None:
    found = by_path(validate(profile(rule(action=ALLOW), rule("read", ""), default_action=ERRNO)))
    assert "allows nothing" in found["spec.syscalls[0].names"].message
    assert "no container can start" in found["spec.syscalls[0].names"].message
    assert found["spec.syscalls[1].names[1]"].message == '"" is not a syscall name'
    assert "no effect" in by_path(validate(profile(rule())))["spec.syscalls[0].names"].message


@pytest.mark.parametrize(
    ("name", "words", "hint"),
    [
        ("pread", "not a syscall", 'did you mean "pread64"?'),
        ("pwrite", "not a syscall", 'did you mean "pwrite64"?'),
        ("fstatat", "not a syscall", 'did you mean "newfstatat"?'),
        ("opneat", "not a syscall", 'did you mean "openat"?'),
        ("<unknown>", "placeholder", "remove it"),
        ("procexit", "tracer event", "remove it"),
        ("syscall_0x0", "placeholder for syscall number 0", "number 0 is read on SCMP_ARCH_X86_64"),
        ("syscall_59", "placeholder for syscall number 59", "number 59 is execve on SCMP_ARCH_X86_64"),
        ("__NR_openat", "C prefix", 'write "openat"'),
        ("Read", "lower case", 'write "read"'),
        (" read", "spaces", 'write "read"'),
        ("no_such_call_at_all", "not a syscall", "remove it or check the spelling"),
    ],
)
def test_unknown_names(name: str, words: str, hint: str) -> None:
    found = by_path(validate(profile(rule("read", name), architectures=(X86_64,))))
    error = found["spec.syscalls[0].names[1]"]
    assert words in error.message
    assert error.hint == hint


def test_names_missing_on_listed_arches_are_warnings() -> None:
    spec = profile(
        rule("vm86", "sigreturn", "open"), architectures=(X86_64, "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64")
    )
    found = validate(spec)
    assert not errors(found)
    warnings = by_path(found, Severity.WARNING)
    assert "SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64" in warnings["spec.syscalls[0].names[0]"].message
    assert "exists only on SCMP_ARCH_X86 " in warnings["spec.syscalls[0].names[1]"].message
    assert "rt_sigreturn" in warnings["spec.syscalls[0].names[1]"].hint
    assert "not on SCMP_ARCH_AARCH64" in warnings["spec.syscalls[0].names[2]"].message
    assert '"openat"' in warnings["spec.syscalls[0].names[2]"].hint


def test_name_on_no_listed_arch_is_a_warning_naming_where_it_exists() -> None:
    found = validate(profile(rule("vm86"), architectures=(X86_64,)))
    warning = by_path(found, Severity.WARNING)["spec.syscalls[0].names[0]"]
    assert "does not exist on SCMP_ARCH_X86_64" in warning.message and "SCMP_ARCH_X86" in warning.message


def test_per_arch_warning_once_per_name() -> None:
    spec = profile(rule("vm86"), rule("vm86", "open", errno_ret=5), architectures=(X86_64,))
    warnings = by_path(validate(spec), Severity.WARNING)
    assert set(warnings) == {"spec.syscalls[0].names[0]"}


def test_no_architectures_no_per_arch_warnings() -> None:
    assert validate(profile(rule("vm86", "open", "read"))) == []


def test_socketcall_multiplexed_names_known_on_x86() -> None:
    assert validate(profile(rule("socket", "bind", "semop"), architectures=("SCMP_ARCH_X86",))) == []


def test_newer_syscalls_are_warnings() -> None:
    name = next(n for n in sorted(v.NEWER_SYSCALLS) if not syscalls.is_syscall(n))
    found = validate(profile(rule(name)))
    assert not errors(found)
    assert "newer than libseccomp" in by_path(found, Severity.WARNING)["spec.syscalls[0].names[0]"].message


# --- notify ---------------------------------------------------------------------------------------


def test_notify_rules() -> None:
    found = by_path(
        validate(profile(rule("write", "mount", action="SCMP_ACT_NOTIFY"), listener_metadata="m"))
    )
    assert set(found) == {"spec.listenerMetadata", "spec.syscalls[0].action", "spec.syscalls[0].names[0]"}
    assert "SCMP_ACT_NOTIFY needs listenerPath" in found["spec.syscalls[0].action"].message
    assert "write cannot be notified" in found["spec.syscalls[0].names[0]"].message


def test_notify_listener_path() -> None:
    assert (
        "absolute"
        in by_path(validate(profile(rule("mount", action="SCMP_ACT_NOTIFY"), listener_path="a.sock")))[
            "spec.listenerPath"
        ].message
    )
    long = "/" + "x" * 120
    assert (
        "107 bytes"
        in by_path(validate(profile(rule("mount", action="SCMP_ACT_NOTIFY"), listener_path=long)))[
            "spec.listenerPath"
        ].message
    )
    assert by_path(validate(profile(listener_path="/run/a.sock")), Severity.INFO)["spec.listenerPath"]
    assert (
        "default action"
        in by_path(validate(profile(default_action="SCMP_ACT_NOTIFY", listener_path="/a")))[
            "spec.defaultAction"
        ].message
    )


# --- conflicts and redundancy ---------------------------------------------------------------------


def test_same_syscall_two_actions_is_an_error() -> None:
    spec = profile(rule("read", "write", action=ALLOW), rule("write", errno_ret=38), default_action=ERRNO)
    error = by_path(validate(spec))["spec.syscalls[1].names[0]"]
    assert "already in spec.syscalls[0] with SCMP_ACT_ALLOW" in error.message
    assert "keeps the first" in error.message


def test_same_syscall_same_effect_or_with_args_is_fine() -> None:
    args = (SyscallArg(index=0, value=1, op="SCMP_CMP_EQ"),)
    spec = profile(
        rule("read", action=ALLOW),
        rule("read", action=ALLOW),
        rule("read", args=args),
        rule("kill", errno_ret=1),
        rule("kill"),  # ERRNO without errnoRet is EPERM (1) in runc
        default_action="SCMP_ACT_LOG",
    )
    assert not errors(validate(spec))


def test_rule_with_default_effect_is_noted() -> None:
    found = validate(profile(rule("read", errno_ret=1), rule("read2"), default_action=ERRNO))
    info = by_path(found, Severity.INFO)
    assert "same effect as defaultAction" in info["spec.syscalls[0].action"].message


# --- whole profile --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "words"),
    [
        ("SCMP_ACT_KILL_PROCESS", "killed at start"),
        ("SCMP_ACT_KILL", "killed at start"),
        (ERRNO, "cannot start"),
        ("SCMP_ACT_TRAP", "cannot start"),
    ],
)
def test_deny_all(default: str, words: str) -> None:
    found = validate(profile(rule("ptrace", action="SCMP_ACT_KILL_THREAD"), default_action=default))
    assert words in by_path(found, Severity.WARNING)["spec.defaultAction"].message


def test_no_deny_all_warning_with_allow_or_log() -> None:
    assert validate(profile(default_action="SCMP_ACT_LOG")) == []
    assert not validate(profile(rule("read", action="SCMP_ACT_LOG"), default_action="SCMP_ACT_KILL_PROCESS"))


@pytest.mark.parametrize(
    ("rules", "errno_ret", "warned", "words"),
    [
        ((rule("read", action=ALLOW),), None, True, 'neither "openat2" nor "clone3"'),
        ((rule("read", action=ALLOW),), 1, True, "EPERM"),
        ((rule("read", action=ALLOW),), 38, False, ""),
        ((rule("read", "openat2", action=ALLOW),), None, True, '"clone3" is not allowed'),
        ((rule("read", "openat2", action=ALLOW), rule("clone3", errno_ret=38)), None, False, ""),
    ],
)
def test_eperm_default_warning(
    rules: tuple[SyscallRule, ...], errno_ret: int | None, warned: bool, words: str
) -> None:
    found = validate(profile(*rules, default_action=ERRNO, default_errno_ret=errno_ret))
    warnings = by_path(found, Severity.WARNING)
    assert ("spec.defaultAction" in warnings) is warned
    if warned:
        assert words in warnings["spec.defaultAction"].message
        assert "defaultErrnoRet: 38" in warnings["spec.defaultAction"].hint


def test_state_and_base_name() -> None:
    found = by_path(validate(profile(state="disabled", base_profile_name="Not_A/Name")))
    assert found["spec.state"].hint == 'did you mean "Disabled"?'
    assert "DNS subdomain" in found["spec.baseProfileName"].message


# --- plumbing -------------------------------------------------------------------------------------


def test_paths_for_bare_json_and_custom_rule_paths() -> None:
    spec = profile(rule("pread"), architectures=("amd64",))
    assert {f.path for f in validate(spec, prefix="")} == {"syscalls[0].names[0]", "architectures[0]"}
    found = validate(spec, rule_paths=["base.syscalls[3]"], arch_paths=["base.architectures[9]"])
    assert {f.path for f in found} == {"base.syscalls[3].names[0]", "base.architectures[9]"}
    with pytest.raises(ValueError):
        validate(spec, rule_paths=[])


def test_checks_table_is_extensible() -> None:
    def no_ptrace(ctx: v.Context) -> Iterator[Finding]:
        for r, path in zip(ctx.spec.syscalls, ctx.rule_paths, strict=True):
            if "ptrace" in r.names and r.action == ALLOW:
                yield Finding(Severity.WARNING, path, "ptrace allowed")

    v.check(no_ptrace)
    try:
        found = validate(profile(rule("ptrace", action=ALLOW), default_action=ERRNO, default_errno_ret=38))
        assert [f.message for f in found] == ["ptrace allowed"]
    finally:
        v.CHECKS.remove(no_ptrace)


def test_combine_drops_findings_about_refused_fields() -> None:
    parsed = [Finding(Severity.ERROR, "spec.syscalls[1]", "no names")]
    validated = [
        Finding(Severity.ERROR, "spec.syscalls[1].names", "empty"),
        Finding(Severity.ERROR, "spec.syscalls[10].names", "empty"),
        Finding(Severity.WARNING, "spec.defaultAction", "x"),
    ]
    assert [f.path for f in combine(parsed, validated)] == [
        "spec.syscalls[1]",
        "spec.syscalls[10].names",
        "spec.defaultAction",
    ]


def test_check_mapping_reports_parse_and_semantic_problems_together() -> None:
    spec, found = check_mapping(
        {
            "defaultAction": ALLOW,
            "syscalls": [
                {"names": ["read"], "action": ALLOW, "errnoRet": "ENOSYS"},
                {"names": ["pread"], "action": ERRNO, "errnoRet": 70000},
            ],
        }
    )
    assert spec is None
    assert {f.path for f in errors(found)} == {
        "spec.syscalls[0].errnoRet",
        "spec.syscalls[1].names[0]",
        "spec.syscalls[1].errnoRet",
    }
    spec, found = check_mapping({"defaultAction": ALLOW})
    assert spec is not None and found == []


def test_check_profile_json() -> None:
    spec, found = check_profile_json(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": 0}]}'
    )
    assert spec is None
    assert [f.path for f in errors(found)] == ["syscalls[0].action", "syscalls[0].names[0]"]
    assert check_profile_json("[")[0] is None
