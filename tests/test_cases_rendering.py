"""The real-world cases (``../shared/cases``) that parsing, validation and rendering must satisfy.

Each test names its case; inputs and expected files are read in place.  Expected JSON is
compared after ``json.loads`` (the files use other whitespace); our own bytes are checked
for determinism separately.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator.findings import BaseProfileMissing, Finding, ProfileError, Severity
from seccomp_operator.render import Rendered, render_mapping, render_profile_json
from seccomp_operator.spec import ProfileSpec, parse_spec
from tests.conftest import CASES
from tests.test_reference_render import assert_well_formed


def case(prefix: str) -> Path:
    (found,) = CASES.glob(f"{prefix}-*")
    return found


def resources(prefix: str) -> dict[str, dict[str, Any]]:
    """``metadata.name`` → ``spec`` of every document in the case's ``input.cr.yaml``."""
    docs = yaml.safe_load_all((case(prefix) / "input.cr.yaml").read_text())
    return {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc}


def expected(prefix: str, name: str) -> Any:
    return json.loads((case(prefix) / name).read_text())


def semantic(document: dict[str, Any]) -> tuple[dict[str, Any], dict[tuple[Any, ...], set[str]]]:
    """What a runtime applies: top-level fields, and names per (action, errnoRet, args).

    Our normal form merges rules with the same (action, errnoRet, args); some expected
    files keep them apart (README: adapt the comparison, not the facts).
    """
    top = {k: v for k, v in document.items() if k != "syscalls"}
    rules: dict[tuple[Any, ...], set[str]] = {}
    for rule in document.get("syscalls", []):
        key = (rule["action"], rule.get("errnoRet"), json.dumps(rule.get("args", []), sort_keys=True))
        rules.setdefault(key, set()).update(rule["names"])
    return top, rules


def refused(spec: object, **kwargs: Any) -> list[Finding]:
    with pytest.raises(ProfileError) as info:
        render_mapping(spec, **kwargs)
    assert info.value.reason == "InvalidSpec"
    return info.value.findings


def errors_at(findings: list[Finding]) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        if f.severity is Severity.ERROR:
            assert f.path not in out, f"two errors for {f.path}: {out.get(f.path)} / {f}"
            out[f.path] = f
    return out


def renders_as(spec: object, expected_doc: Any, **kwargs: Any) -> Rendered:
    rendered = render_mapping(spec, **kwargs)
    assert rendered.document == expected_doc
    assert render_mapping(spec, **kwargs).content == rendered.content, "same spec, same bytes"
    assert_well_formed(rendered)
    return rendered


# --- 004: errnoRet typed as a string --------------------------------------------------------------


def test_004_quoted_errno_is_written_as_number() -> None:
    specs = resources("004")
    rendered = renders_as(specs["deny-keyring"], expected("004", "expected.deny-keyring.json"))
    assert b'"errnoRet": 38' in rendered.content
    assert any(f.severity is Severity.INFO and "quoted" in f.message for f in rendered.findings)


def test_004_bad_errno_refused_with_one_finding_per_problem() -> None:
    found = errors_at(refused(resources("004")["bad-errno"]))
    assert set(found) == {
        "spec.syscalls[0].errnoRet",
        "spec.syscalls[1].errnoRet",
        "spec.syscalls[2].errnoRet",
    }
    assert "ENOSYS" in found["spec.syscalls[0].errnoRet"].message
    assert "38" in found["spec.syscalls[0].errnoRet"].hint
    assert "SCMP_ACT_ALLOW" in found["spec.syscalls[1].errnoRet"].message
    assert "65537" in found["spec.syscalls[2].errnoRet"].message
    assert "16-bit" in found["spec.syscalls[2].errnoRet"].message


# --- 005: defaultErrnoRet -------------------------------------------------------------------------


def test_005_web_enosys_matches_expected() -> None:
    rendered = renders_as(resources("005")["web-enosys"], expected("005", "expected.web-enosys.json"))
    assert '"defaultErrno"' not in rendered.content.decode()
    assert not [f for f in rendered.findings if f.severity is Severity.WARNING]


def test_005_web_eperm_renders_with_warning() -> None:
    rendered = render_mapping(resources("005")["web-eperm"])
    assert_well_formed(rendered)
    (warning,) = [f for f in rendered.findings if f.severity is Severity.WARNING]
    assert "EPERM" in warning.message and "openat2" in warning.message and "clone3" in warning.message
    assert "ENOSYS" in warning.message
    assert "defaultErrnoRet: 38" in warning.hint


def test_005_bad_default_errno_refused() -> None:
    found = errors_at(refused(resources("005")["bad-default-errno"]))
    assert list(found) == ["spec.defaultErrnoRet"]
    assert "SCMP_ACT_ERRNO or SCMP_ACT_TRACE" in found["spec.defaultErrnoRet"].message


# --- 006: notify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "words"),
    [
        ("notify-default", "spec.defaultAction", "cannot be the default action"),
        ("notify-write", "spec.syscalls[0].names[0]", "write cannot be notified"),
        ("notify-relative", "spec.listenerPath", "not an absolute path"),
    ],
)
def test_006_notify_refused_with_reason(name: str, path: str, words: str) -> None:
    found = errors_at(refused(resources("006")[name]))
    assert list(found) == [path]
    assert words in found[path].message


def test_006_notify_without_socket_refused_for_both_reasons() -> None:
    found = errors_at(refused(resources("006")["notify-no-socket"]))
    assert set(found) == {"spec.listenerMetadata", "spec.syscalls[0].action"}
    assert "needs listenerPath" in found["spec.syscalls[0].action"].message
    assert "listenerPath" in found["spec.listenerMetadata"].message


def test_006_notify_mount_matches_expected() -> None:
    renders_as(resources("006")["notify-mount"], expected("006", "expected.notify-mount.json"))


# --- 008: action names ----------------------------------------------------------------------------


def test_008_valid_actions_match_expected() -> None:
    renders_as(resources("008")["audit-then-kill"], expected("008", "expected.audit-then-kill.json"))


def test_008_misspelled_actions_one_finding_per_field_with_suggestion() -> None:
    found = errors_at(refused(resources("008")["misspelled"]))
    assert {path: f.hint for path, f in found.items()} == {
        "spec.defaultAction": 'did you mean "SCMP_ACT_ERRNO"?',
        "spec.syscalls[0].action": 'did you mean "SCMP_ACT_ERRNO"?',
        "spec.syscalls[1].action": 'did you mean "SCMP_ACT_ALLOW"?',
        "spec.syscalls[2].action": 'did you mean "SCMP_ACT_KILL_PROCESS"?',
    }
    assert "case-sensitive" in found["spec.defaultAction"].message
    assert "spaces" in found["spec.syscalls[1].action"].message


# --- 010: base profiles ---------------------------------------------------------------------------


def test_010_agent_app_with_base_is_the_union() -> None:
    specs = resources("010")

    def lookup(name: str) -> ProfileSpec | None:
        return parse_spec(specs[name])[0] if name in specs else None

    rendered = renders_as(
        specs["agent-app"],
        expected("010", "expected.agent-app.union.json"),
        lookup_base=lookup,
        name="agent-app",
    )
    assert "baseProfileName" not in rendered.content.decode()


def test_010_missing_base_keeps_profile_pending() -> None:
    with pytest.raises(BaseProfileMissing) as info:
        render_mapping(resources("010")["agent-app"], lookup_base=lambda name: None)
    assert info.value.reason == "BaseProfileMissing"
    (finding,) = info.value.findings
    assert finding.path == "spec.baseProfileName" and "runc-base-old" in finding.message


# --- 020: empty names, deny-all -------------------------------------------------------------------


def test_020_outcomes() -> None:
    specs = resources("020")
    outcomes = (case("020") / "expected.outcomes.txt").read_text()
    assert "a) generated-empty   REFUSED" in outcomes and "d) allow-empty-deny  REFUSED" in outcomes

    for name in ("generated-empty", "allow-empty-deny"):
        found = errors_at(refused(specs[name]))
        assert list(found) == ["spec.syscalls[0].names"]
        assert "empty" in found["spec.syscalls[0].names"].message
    assert "allows nothing" in errors_at(refused(specs["generated-empty"]))["spec.syscalls[0].names"].message

    kill = render_mapping(specs["kill-all"])
    assert any(f.severity is Severity.WARNING and "killed at start" in f.message for f in kill.findings)
    block = render_mapping(specs["profile-block"])
    assert any(f.severity is Severity.WARNING and "cannot start" in f.message for f in block.findings)
    assert block.document == {"defaultAction": "SCMP_ACT_ERRNO"}
    assert b"null" not in block.content and b"syscalls" not in block.content
    for rendered in (kill, block):
        assert_well_formed(rendered)


# --- 023: malformed JSON shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "needles"),
    [
        ("input.array.json", ["JSON array", 'put it under "syscalls"']),
        ("input.path-string.json", ["JSON string", "file path"]),
        ("input.not-json.txt", ["not JSON (line 1, column 1)", "file path"]),
        ("input.trailing-comma.json", ["line 4", "trailing comma", "strict JSON"]),
    ],
)
def test_023_shape_errors(file: str, needles: list[str]) -> None:
    with pytest.raises(ProfileError) as info:
        render_profile_json((case("023") / file).read_bytes())
    (error,) = [f for f in info.value.findings if f.severity is Severity.ERROR]
    text = str(error)
    for needle in needles:
        assert needle in text


def test_023_numeric_actions_and_snake_case_keys() -> None:
    with pytest.raises(ProfileError) as info:
        render_profile_json((case("023") / "input.numeric-actions.json").read_bytes())
    findings = info.value.findings
    found = errors_at(findings)
    assert found["default_action"].hint == 'did you mean "defaultAction"?'
    assert "required" in found["defaultAction"].message
    for i in (0, 1):
        assert "the number 0" in found[f"syscalls[{i}].action"].message
        assert 'actions are strings such as "SCMP_ACT_ERRNO"' in found[f"syscalls[{i}].action"].message
    assert any(f.severity is Severity.WARNING and 'legacy singular "name"' in f.message for f in findings)


def test_023_unknown_key_near_miss_architecture() -> None:
    found = errors_at(refused({"defaultAction": "SCMP_ACT_ALLOW", "architecture": ["SCMP_ARCH_X86_64"]}))
    assert found["spec.architecture"].hint == 'did you mean "architectures"?'


# --- 001: legacy name -----------------------------------------------------------------------------


def test_001_legacy_profile_refused_with_entry_indexes() -> None:
    with pytest.raises(ProfileError) as info:
        render_profile_json((case("001") / "input.profile.json").read_bytes())
    found = errors_at(info.value.findings)
    assert set(found) == {"syscalls[2]", "syscalls[3]"}
    assert (
        'neither "name" nor "names"' in found["syscalls[2]"].message
        or 'no "names"' in found["syscalls[2]"].message
    )
    assert 'both legacy "name" and "names"' in found["syscalls[3]"].message
    (legacy,) = [f for f in info.value.findings if f.severity is Severity.WARNING and "legacy" in f.message]
    assert "syscalls[0]" in legacy.message and "syscalls[1]" in legacy.message


def test_001_valid_part_converted() -> None:
    """Dropping the refused entries, the rest renders as expected.converted.json, without "name"."""
    text = (case("001") / "input.profile.json").read_text()
    with pytest.raises(ProfileError) as info:
        render_profile_json(text)
    bad = set(errors_at(info.value.findings))
    data = json.loads(text)
    data["syscalls"] = [r for i, r in enumerate(data["syscalls"]) if f"syscalls[{i}]" not in bad]
    rendered = render_profile_json(json.dumps(data))
    # expected.converted.json keeps chmod and fchmod in two rules; ours merges same-action rules
    assert semantic(rendered.document) == semantic(expected("001", "expected.converted.json"))
    assert rendered.document["syscalls"] == [{"names": ["chmod", "fchmod"], "action": "SCMP_ACT_ERRNO"}]
    assert '"name"' not in rendered.content.decode()
    assert_well_formed(rendered)


def test_001_cr_cannot_carry_legacy_name() -> None:
    found = errors_at(
        refused(
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "chmod", "action": "SCMP_ACT_ERRNO"}]}
        )
    )
    assert found["spec.syscalls[0].name"].hint == 'write names: ["chmod"]'


def test_001_empty_name_in_cr_refused() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chmod", ""], "action": "SCMP_ACT_ERRNO"}],
    }
    found = errors_at(refused(spec))
    assert list(found) == ["spec.syscalls[0].names[1]"]


# --- 002: sysdig event names ----------------------------------------------------------------------


def test_002_bogus_names_are_errors() -> None:
    with pytest.raises(ProfileError) as info:
        render_profile_json((case("002") / "input.profile.json").read_bytes())
    findings = info.value.findings
    data = json.loads((case("002") / "input.profile.json").read_text())
    names = data["syscalls"][0]["names"]
    found = errors_at(findings)
    bad = {names[int(p.rsplit("[", 1)[1].rstrip("]"))] for p in found}
    assert bad == {"<unknown<", "", "pread", "procexit", "pwrite", "signaldeliver", "switch"}
    by_name = {names[int(p.rsplit("[", 1)[1].rstrip("]"))]: f for p, f in found.items()}
    assert by_name["pread"].hint == 'did you mean "pread64"?'
    assert by_name["pwrite"].hint == 'did you mean "pwrite64"?'
    assert "placeholder" in by_name["<unknown<"].message
    for event in ("procexit", "signaldeliver", "switch"):
        assert "tracer event" in by_name[event].message
    sigreturn = [f for f in findings if f.severity is Severity.WARNING and '"sigreturn"' in f.message]
    assert sigreturn and "SCMP_ARCH_X86_64" in sigreturn[0].message and "rt_sigreturn" in sigreturn[0].hint
    assert any(f.path == "syscalls[0].name" and f.severity is Severity.WARNING for f in findings)


def test_002_same_list_in_a_cr_is_refused() -> None:
    data = json.loads((case("002") / "input.profile.json").read_text())
    rule = data["syscalls"][0]
    spec = {
        **{k: v for k, v in data.items() if k != "syscalls"},
        "syscalls": [{"names": rule["names"], "action": rule["action"]}],
    }
    found = errors_at(refused(spec))
    assert len(found) == 7 and all(p.startswith("spec.syscalls[0].names[") for p in found)


@pytest.mark.parametrize("name", ["<unknown>", "syscall_0x3", "SYS_read", "READ"])
def test_002_more_placeholder_shapes(name: str) -> None:
    spec: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"]}
    spec["syscalls"] = [{"names": ["read", name], "action": "SCMP_ACT_ALLOW"}]
    found = errors_at(refused(spec))
    (finding,) = found.values()
    assert finding.path == "spec.syscalls[0].names[1]"
    if name == "syscall_0x3":
        assert "close on SCMP_ARCH_X86_64" in finding.hint
    if name in ("SYS_read", "READ"):
        assert finding.hint == 'write "read"'
