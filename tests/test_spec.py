"""Strict parsing: every bad input becomes a finding with the exact field path, never a traceback."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import pytest

from seccomp_operator import constants as c
from seccomp_operator.findings import Finding, Severity, errors
from seccomp_operator.spec import (
    MAX_DEPTH,
    MAX_NAMES,
    MAX_RULES,
    ProfileSpec,
    SyscallArg,
    SyscallRule,
    decode_json,
    parse_profile,
    parse_profile_json,
    parse_spec,
)

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"


def spec_with(**fields: Any) -> dict[str, Any]:
    return {"defaultAction": ERRNO, **fields}


def rule(*names: str, action: str = ALLOW, **fields: Any) -> dict[str, Any]:
    return {"names": list(names), "action": action, **fields}


def only_error(findings: list[Finding]) -> Finding:
    (found,) = errors(findings)
    return found


# --- the model ------------------------------------------------------------------------------------


def test_full_spec_parses_into_typed_model() -> None:
    spec, found = parse_spec(
        {
            "defaultAction": ERRNO,
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "x=y",
            "baseProfileName": "runc-base",
            "state": "Disabled",
            "syscalls": [
                rule("read", "write"),
                {
                    "names": ["clone"],
                    "action": ERRNO,
                    "errnoRet": 1,
                    "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                },
            ],
        }
    )
    assert found == []
    assert spec == ProfileSpec(
        default_action=ERRNO,
        default_errno_ret=38,
        architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"),
        flags=("SECCOMP_FILTER_FLAG_LOG",),
        listener_path="/run/agent.sock",
        listener_metadata="x=y",
        syscalls=(
            SyscallRule(names=("read", "write"), action=ALLOW),
            SyscallRule(
                names=("clone",),
                action=ERRNO,
                errno_ret=1,
                args=(SyscallArg(index=0, value=2114060288, value_two=0, op="SCMP_CMP_MASKED_EQ"),),
            ),
        ),
        base_profile_name="runc-base",
        state=c.STATE_DISABLED,
    )


def test_model_is_frozen_and_defaults() -> None:
    spec, _ = parse_spec({"defaultAction": ALLOW})
    assert spec == ProfileSpec(default_action=ALLOW)
    assert spec is not None and spec.state == c.STATE_ENABLED and spec.syscalls == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.default_action = ERRNO  # type: ignore[misc]


def test_nulls_are_absent_fields() -> None:
    spec, found = parse_spec(spec_with(syscalls=None, architectures=None, defaultErrnoRet=None))
    assert found == [] and spec == ProfileSpec(default_action=ERRNO)


# --- resource (CR) spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("default_action", "defaultAction"),
        ("architecture", "architectures"),
        ("syscall", "syscalls"),
        ("listenerpath", "listenerPath"),
        ("baseProfile", "baseProfileName"),
    ],
)
def test_unknown_keys_are_errors_with_did_you_mean(key: str, suggestion: str) -> None:
    spec, found = parse_spec({"defaultAction": ALLOW, key: "x"})
    assert spec is None
    error = only_error(found)
    assert error.path == f"spec.{key}"
    assert error.hint == f'did you mean "{suggestion}"?'


def test_unknown_key_without_near_miss_lists_known_keys() -> None:
    error = only_error(parse_spec({"defaultAction": ALLOW, "zzz": 1})[1])
    assert error.hint.startswith("known keys: defaultAction")


def test_missing_spec_or_wrong_type() -> None:
    values: list[object] = [None, [], "text", 3]
    for value in values:
        spec, found = parse_spec(value)
        assert spec is None
        assert only_error(found).path == "spec"


def test_default_action_required() -> None:
    error = only_error(parse_spec({})[1])
    assert error.path == "spec.defaultAction" and "required" in error.message


def test_quoted_numbers_converted_with_info() -> None:
    spec, found = parse_spec(
        spec_with(defaultErrnoRet="38", syscalls=[rule("ptrace", action=ERRNO, errnoRet="1")])
    )
    assert spec is not None
    assert spec.default_errno_ret == 38 and spec.syscalls[0].errno_ret == 1
    assert [f.severity for f in found] == [Severity.INFO, Severity.INFO]
    assert found[0].path == "spec.defaultErrnoRet" and "quoted" in found[0].message


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        ("ENOSYS", "errno name", "write 38"),
        ("eperm", "errno name", "write 1"),
        ("0x26", "plain decimal", "write 38"),
        (38.0, "whole number", "write 38"),
        (38.5, "whole number", ""),
        (True, "boolean true", ""),
        ("-1", "plain decimal", "write -1"),
        ([38], "a list", ""),
        ("thirty-eight", "a number is expected", ""),
    ],
)
def test_bad_numbers(value: object, message: str, hint: str) -> None:
    spec, found = parse_spec(spec_with(syscalls=[rule("ptrace", action=ERRNO, errnoRet=value)]))
    assert spec is None
    error = only_error(found)
    assert error.path == "spec.syscalls[0].errnoRet"
    assert message in error.message
    assert error.hint.startswith(hint)


def test_yaml_booleans_and_dates_are_type_errors() -> None:
    spec, found = parse_spec(
        spec_with(syscalls=[rule("read", True)], listenerMetadata=datetime.date(2024, 1, 1))  # type: ignore[arg-type]
    )
    assert spec is None
    by_path = {f.path: f for f in errors(found)}
    assert "YAML" in by_path["spec.syscalls[0].names[1]"].message
    assert "date" in by_path["spec.listenerMetadata"].message


@pytest.mark.parametrize(
    ("syscalls", "path", "words"),
    [
        ({"names": ["read"], "action": ALLOW}, "spec.syscalls", "wrap the rule"),
        ("read", "spec.syscalls", "a list of rules"),
        (["read"], "spec.syscalls[0]", "each rule is an object"),
        ([{"names": "read", "action": ALLOW}], "spec.syscalls[0].names", 'write ["read"]'),
        ([{"names": {"a": 1}, "action": ALLOW}], "spec.syscalls[0].names", "a list of syscall names"),
        ([{"names": None, "action": ALLOW}], "spec.syscalls[0].names", "got null"),
        ([{"action": ALLOW}], "spec.syscalls[0]", 'no "names"'),
        ([{"names": ["read"]}], "spec.syscalls[0].action", "required"),
        ([{"names": ["read"], "action": 2}], "spec.syscalls[0].action", "actions are strings"),
        ([{"names": [7], "action": ALLOW}], "spec.syscalls[0].names[0]", "syscall names are strings"),
        ([{"names": ["read"], "action": ALLOW, "args": {}}], "spec.syscalls[0].args", "a list of argument"),
        (
            [{"names": ["read"], "action": ALLOW, "args": [1]}],
            "spec.syscalls[0].args[0]",
            "argument condition",
        ),
        (
            [{"names": ["read"], "action": ALLOW, "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}],
            "spec.syscalls[0].args[0].index",
            "required",
        ),
        (
            [{"names": ["read"], "action": ALLOW, "args": [{"index": 0, "value": 1}]}],
            "spec.syscalls[0].args[0].op",
            "required",
        ),
        (
            [{"names": ["read"], "action": ALLOW, "args": [{"index": 0, "value": 1, "op": "EQ", "val": 2}]}],
            "spec.syscalls[0].args[0].val",
            "not a known key",
        ),
        ([{"names": ["read"], "action": ALLOW, "errno": "EPERM"}], "spec.syscalls[0].errno", "CRI-O"),
        ([{"names": ["read"], "action": ALLOW, "includes": {}}], "spec.syscalls[0].includes", "Docker"),
    ],
)
def test_wrong_shapes_are_findings(syscalls: object, path: str, words: str) -> None:
    spec, found = parse_spec(spec_with(syscalls=syscalls))
    assert spec is None
    error = only_error(found)
    assert error.path == path
    assert words in str(error)


def test_legacy_name_in_cr_is_an_error_with_fix() -> None:
    found = errors(parse_spec(spec_with(syscalls=[{"name": "chmod", "action": ALLOW}]))[1])
    assert [(f.path, f.hint) for f in found] == [
        ("spec.syscalls[0].name", 'write names: ["chmod"]'),
        ("spec.syscalls[0]", 'add "names": ["<syscall>"]'),
    ]


def test_spo_disabled_maps_to_state() -> None:
    spec, found = parse_spec(spec_with(disabled=True))
    assert found == [] and spec is not None and spec.state == c.STATE_DISABLED
    spec, found = parse_spec(spec_with(disabled=False))
    assert spec is not None and spec.state == c.STATE_ENABLED
    assert only_error(parse_spec(spec_with(disabled=True, state="Enabled"))[1]).path == "spec.disabled"
    assert only_error(parse_spec(spec_with(disabled="yes"))[1]).path == "spec.disabled"


def test_foreign_top_level_keys() -> None:
    found = parse_spec(spec_with(archMap=[], defaultErrno="ENOSYS"))[1]
    assert {f.path for f in errors(found)} == {"spec.archMap", "spec.defaultErrno"}


def test_size_limits() -> None:
    error = only_error(parse_spec(spec_with(syscalls=[rule("read")] * (MAX_RULES + 1)))[1])
    assert error.path == "spec.syscalls" and "too many rules" in error.message
    many = [rule(*(["read"] * 1000)) for _ in range(MAX_NAMES // 1000 + 1)]
    error = only_error(parse_spec(spec_with(syscalls=many))[1])
    assert str(MAX_NAMES) in error.message
    error = only_error(parse_spec(spec_with(listenerPath="/" + "a" * 5000))[1])
    assert error.path == "spec.listenerPath" and "too long" in error.message
    error = only_error(parse_spec(spec_with(listenerPath="/a\x00b"))[1])
    assert "NUL" in error.message


def test_partial_mode_keeps_what_could_be_read() -> None:
    bad = spec_with(syscalls=[rule("read", errnoRet="ENOSYS"), rule("write")], bogus=1)
    assert parse_spec(bad)[0] is None
    spec, found = parse_spec(bad, partial=True)
    assert spec is not None and len(errors(found)) == 2
    assert spec.syscalls[0] == SyscallRule(names=("read",), action=ALLOW)  # bad errnoRet left out
    assert spec.syscalls[1].names == ("write",)


def test_other_prefix() -> None:
    error = only_error(parse_spec({"defaultAction": 1}, prefix="x.spec")[1])
    assert error.path == "x.spec.defaultAction"


# --- bare JSON ------------------------------------------------------------------------------------


def test_bare_json_parses_with_plain_paths() -> None:
    spec, found = parse_profile_json(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": 1}]}'
    )
    assert spec is None
    assert only_error(found).path == "syscalls[0].action"


def test_bare_json_rejects_resource_only_keys() -> None:
    error = only_error(parse_profile({"defaultAction": ALLOW, "baseProfileName": "x"})[1])
    assert error.path == "baseProfileName"


def test_legacy_name_converted_with_one_warning() -> None:
    spec, found = parse_profile_json(
        json.dumps(
            {
                "defaultAction": ALLOW,
                "syscalls": [{"name": "chmod", "action": ERRNO}, {"name": "fchmod", "action": ERRNO}],
            }
        )
    )
    assert spec is not None
    assert [r.names for r in spec.syscalls] == [("chmod",), ("fchmod",)]
    (warning,) = found
    assert warning.severity is Severity.WARNING and warning.path == "syscalls"
    assert "syscalls[0], syscalls[1]" in warning.message and "containerd" in warning.message


@pytest.mark.parametrize(
    ("entry", "severity", "path", "words"),
    [
        ({"name": "x", "names": ["y"], "action": ERRNO}, Severity.ERROR, "syscalls[0]", "both"),
        ({"action": ERRNO}, Severity.ERROR, "syscalls[0]", 'no "names"'),
        ({"name": "", "action": ERRNO}, Severity.ERROR, "syscalls[0].name", "must not be empty"),
        ({"name": 3, "action": ERRNO}, Severity.ERROR, "syscalls[0].name", "the number 3"),
        ({"name": "", "names": ["read"], "action": ERRNO}, Severity.WARNING, "syscalls[0].name", "dropped"),
    ],
)
def test_legacy_name_variants(entry: dict[str, Any], severity: Severity, path: str, words: str) -> None:
    _, found = parse_profile({"defaultAction": ALLOW, "syscalls": [entry]})
    (finding,) = found
    assert (finding.severity, finding.path) == (severity, path)
    assert words in finding.message


def test_docker_comment_dropped_with_info() -> None:
    spec, found = parse_profile(
        {"defaultAction": ALLOW, "syscalls": [rule("a", comment="x"), rule("b", comment="y")]}
    )
    assert spec is not None
    (info,) = found
    assert info.severity is Severity.INFO and "2 Docker/moby" in info.message


def test_duplicate_keys_are_errors_with_path() -> None:
    _, found = parse_profile_json(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": '
        '[{"names": ["a"], "action": "SCMP_ACT_ERRNO", "action": "SCMP_ACT_ALLOW"}]}'
    )
    error = only_error(found)
    assert error.path == "syscalls[0].action" and "more than once" in error.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"defaultAction": "SCMP_ACT_ALLOW",}', "line 1, column 35: trailing comma"),
        ('{\n  "defaultAction": "SCMP_ACT_ALLOW" // allow\n}', "line 2, column 37: comments are not allowed"),
        ("{'defaultAction': 'SCMP_ACT_ALLOW'}", "double quotes"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": NaN}', "NaN"),
        ('{"defaultAction": "SCMP_ACT_ALLOW"} {}', "more text after the end"),
        ("", "empty"),
        ("   \n", "empty"),
        ("\ufeff{}", "byte-order mark"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b'{"defaultAction": "\xff"}', "not UTF-8"),
        ("defaultAction: SCMP_ACT_ALLOW", "not JSON (line 1, column 1)"),
        ("/etc/profiles/default.json", "looks like a file path"),
        ('"profiles/x.json"', "looks like a file path"),
        ('"hello"', "the string"),
        ("42", "the number 42"),
        ("null", "null"),
        ("[]", "JSON array"),
        ("[1, 2]", "JSON array"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("[" * 40 + "]" * 40, "nested more than 32 levels"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"defaultAction": "SCMP_ACT_ALLOW" "x": 1}', "line 1, column 36: expecting ','"),
    ],
)
def test_strict_json_errors(text: str | bytes, words: str) -> None:
    spec, found = parse_profile_json(text)
    assert spec is None
    assert words in str(only_error(found))


def test_array_of_non_rules_has_no_rules_hint() -> None:
    error = only_error(parse_profile_json("[1, 2]")[1])
    assert "syscall rules" not in error.message


def test_decode_json_depth_limit_constant() -> None:
    value, found = decode_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert found == [] and value is not None


def test_text_size_limit() -> None:
    from seccomp_operator.spec import MAX_TEXT_BYTES

    error = only_error(parse_profile_json(" " * (MAX_TEXT_BYTES + 1))[1])
    assert "bytes long" in error.message


def test_non_string_keys_from_yaml() -> None:
    _, found = parse_spec({"defaultAction": ALLOW, 1: "x"})
    assert "not a valid key" in only_error(found).message
