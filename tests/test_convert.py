"""``seccomp-operator convert``: Docker/moby, CRI-O and SPO profiles flattened into plain OCI form.

Expected JSON is compared by what a runtime applies: top-level fields, and names per
``(action, errnoRet, args)``, because our normal form merges rules with the same action, errno
and arguments (``expected.*.json`` of case 009 keep ``arch_prctl`` in a rule of its own).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator import convert as cv
from seccomp_operator.render import render_mapping
from tests.clitools import Run, run_cli
from tests.conftest import CASES, REFERENCE
from tests.test_cases_rendering import semantic
from tests.test_reference_render import assert_strict_oci

MOBY = REFERENCE / "moby" / "default.json"
CRIO = REFERENCE / "containers-common" / "seccomp.json"
FOREIGN_KEYS = ("archMap", "includes", "excludes", "comment", "name", "defaultErrno", "errno")


def case(prefix: str) -> Path:
    (found,) = CASES.glob(f"{prefix}-*")
    return found


@pytest.fixture
def convert(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def run(*args: str | Path) -> Run:
        return run_cli(["convert", *(str(a) for a in args)], capsys, monkeypatch)

    return run


def names_of(document: dict[str, Any], action: str = "SCMP_ACT_ALLOW") -> set[str]:
    """Names with an unconditional rule of ``action``."""
    return {
        n
        for r in document.get("syscalls", [])
        if r["action"] == action and not r.get("args")
        for n in r["names"]
    }


def no_foreign_keys(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    for key in FOREIGN_KEYS:
        assert f'"{key}"' not in text, key
    assert_strict_oci(document)


# --- case 009 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--arch", "amd64"], "expected.amd64.no-extra-caps.json"),
        (["--arch", "arm64", "--caps", "CAP_SYS_PTRACE"], "expected.arm64.caps-SYS_PTRACE.json"),
        (["--arch", "aarch64", "--caps", "sys_ptrace"], "expected.arm64.caps-SYS_PTRACE.json"),
    ],
)
def test_009_flattened_as_expected(convert, args: list[str], expected: str) -> None:  # type: ignore[no-untyped-def]
    run = convert(case("009") / "input.profile.json", "--to", "json", *args)
    assert run.code == 0, run.err
    document = json.loads(run.out)
    assert semantic(document) == semantic(json.loads((case("009") / expected).read_text()))
    no_foreign_keys(document)


def test_009_cr_output_is_a_resource_that_renders_to_the_same_bytes(convert) -> None:  # type: ignore[no-untyped-def]
    source = case("009") / "input.profile.json"
    as_json = convert(source, "--to", "json", "--arch", "amd64")
    as_cr = convert(source, "--to", "cr", "--arch", "amd64", "--name", "web", "--namespace", "team-a")
    assert as_cr.code == 0
    assert as_cr.out.startswith("# Converted by seccomp-operator convert from input.profile.json (docker)\n")
    assert "# for amd64, capabilities: runtime defaults, kernel " in as_cr.out
    resource = yaml.safe_load(as_cr.out)
    assert resource["apiVersion"] == "seccomp-operator.dev/v1alpha1" and resource["kind"] == "SeccompProfile"
    assert resource["metadata"] == {"name": "web", "namespace": "team-a"}
    assert render_mapping(resource["spec"]).content.decode() == as_json.out


def test_009_what_each_left_out_rule_needed_is_said(convert) -> None:  # type: ignore[no-untyped-def]
    run = convert(case("009") / "input.profile.json", "--to", "json", "--arch", "amd64", "-v")
    assert "INFO syscalls: 4 rule(s) left out for amd64" in run.err
    for fact in (
        "syscalls[2] (ptrace, process_vm_readv: needs CAP_SYS_PTRACE)",
        "syscalls[3] (reboot: needs CAP_SYS_BOOT)",
        "syscalls[5] (clone: only on s390, s390x)",
        "syscalls[6] (clone, unshare, mount: needs CAP_SYS_ADMIN)",
    ):
        assert fact in run.err


def test_capabilities_change_the_result() -> None:
    source = str(case("009") / "input.profile.json")
    admin = cv.convert_file(source, cv.make_target("amd64", ["SYS_ADMIN"])).rendered.document
    assert {"clone", "mount", "unshare"} <= names_of(
        admin
    )  # the unconditional clone rule replaces the masked one
    assert not [r for r in admin["syscalls"] if r.get("args")]
    # s390x: flattened only (libseccomp cannot compile a big-endian filter on a little-endian host)
    s390 = cv.flatten(json.loads(Path(source).read_text()), cv.make_target("s390x")).data
    assert s390["architectures"] == ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
    ((arg,),) = [r["args"] for r in s390["syscalls"] if r.get("args")]
    assert arg["index"] == 1  # s390 passes clone flags in the second argument
    assert "arch_prctl" not in {n for r in s390["syscalls"] for n in r["names"]}


def test_no_default_caps(convert) -> None:  # type: ignore[no-untyped-def]
    default = json.loads(convert(MOBY, "--to", "json", "--arch", "amd64").out)
    bare = json.loads(convert(MOBY, "--to", "json", "--arch", "amd64", "--no-default-caps").out)
    assert "chroot" in names_of(default)  # CAP_SYS_CHROOT is a runtime default capability
    assert "chroot" not in names_of(bare)
    everything = json.loads(convert(MOBY, "--to", "json", "--arch", "amd64", "--caps", "ALL").out)
    assert {"mount", "unshare", "bpf", "ptrace", "reboot", "setns"} <= names_of(everything)
    for name in ("mount", "unshare", "setns", "bpf", "reboot"):
        assert name not in names_of(default)
    assert "ptrace" in names_of(default)  # moby allows it from kernel 4.8 on (minKernel), whatever the caps


# --- minKernel ---------------------------------------------------------------------------------------


def write(tmp_path: Path, data: Any, name: str = "profile.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


KERNEL_GATED = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
    ],
}


@pytest.mark.parametrize(
    ("kernel", "allowed"),
    [("4.7", {"read", "kcmp"}), ("4.8", {"read", "ptrace", "kcmp"}), ("5.10.0-28-amd64", {"read", "ptrace"})],
)
def test_min_kernel(convert, tmp_path: Path, kernel: str, allowed: set[str]) -> None:  # type: ignore[no-untyped-def]
    run = convert(write(tmp_path, KERNEL_GATED), "--to", "json", "--arch", "amd64", "--kernel", kernel)
    assert names_of(json.loads(run.out)) == allowed


def test_kernel_defaults_to_the_running_one() -> None:
    major, minor = platform.release().split(".")[:2]
    target = cv.make_target("amd64")
    assert target.kernel == (int(major), int("".join(ch for ch in minor if ch.isdigit())))


# --- CRI-O / containers-common ----------------------------------------------------------------------


def test_containers_common_default(convert) -> None:  # type: ignore[no-untyped-def]
    run = convert(CRIO, "--to", "json", "--arch", "amd64", "--kernel", "5.4")
    assert run.code == 0, run.err
    document = json.loads(run.out)
    no_foreign_keys(document)
    assert document["defaultErrnoRet"] == 38
    assert all(isinstance(r.get("errnoRet", 0), int) for r in document["syscalls"])
    # setns: allowed by the big list, denied by a later rule for containers without CAP_SYS_ADMIN;
    # libseccomp keeps the first rule, so runtimes allow it; convert keeps that and says so
    assert "setns" in names_of(document)
    assert "setns in syscalls[16] (SCMP_ACT_ERRNO) by syscalls[1] (SCMP_ACT_ALLOW)" in run.err


def test_errno_names(convert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrno": "ENOSYS",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"},
            {"names": ["add_key"], "action": "SCMP_ACT_ERRNO", "errno": "EACCES", "errnoRet": 13},
        ],
    }
    run = convert(write(tmp_path, profile), "--to", "json", "--arch", "amd64")
    document = json.loads(run.out)
    assert document["defaultErrnoRet"] == 38
    assert semantic(document)[1] == {
        ("SCMP_ACT_ALLOW", None, "[]"): {"read"},
        ("SCMP_ACT_ERRNO", 1, "[]"): {"keyctl"},
        ("SCMP_ACT_ERRNO", 13, "[]"): {"add_key"},
    }
    profile["syscalls"][2]["errnoRet"] = 1  # type: ignore[index]
    profile["defaultErrno"] = "ENOSIS"
    bad = convert(write(tmp_path, profile), "--to", "json", "--arch", "amd64")
    assert bad.code == 2 and not bad.out
    assert 'ERROR defaultErrno: "ENOSIS" is not an errno name' in bad.err
    assert 'ERROR syscalls[2].errno: "EACCES" is 13, but errnoRet says 1' in bad.err


# --- SPO resources ---------------------------------------------------------------------------------


SPO_V1BETA1 = """\
apiVersion: security-profiles-operator.x-k8s.io/v1beta1
kind: SeccompProfile
metadata: {name: base, namespace: apps}
spec:
  defaultAction: SCMP_ACT_ERRNO
  architectures: [SCMP_ARCH_X86_64]
  syscalls:
    - action: SCMP_ACT_ALLOW
      names: [read, write, exit_group]
---
apiVersion: security-profiles-operator.x-k8s.io/v1beta1
kind: SeccompProfile
metadata: {name: app, namespace: apps}
spec:
  baseProfileName: base
  defaultAction: SCMP_ACT_ERRNO
  architectures: [SCMP_ARCH_X86_64]
  syscalls:
    - action: SCMP_ACT_ALLOW
      names: [openat, close]
    - action: SCMP_ACT_ERRNO
      errnoRet: "38"
      names: [keyctl]
"""


def test_spo_v1beta1_with_base_in_the_same_file(convert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = write(tmp_path, SPO_V1BETA1, "spo.yaml")
    several = convert(source, "--to", "json")
    assert several.code == 2 and "choose one with --source-name" in several.err
    run = convert(source, "--to", "cr", "--source-name", "app")
    assert run.code == 0, run.err
    assert "(security-profiles-operator.x-k8s.io/v1beta1)" in run.out
    resource = yaml.safe_load(run.out)
    assert resource["metadata"] == {"name": "app"}
    spec = resource["spec"]
    assert "baseProfileName" not in spec
    assert semantic(spec)[1] == {
        ("SCMP_ACT_ALLOW", None, "[]"): {"close", "exit_group", "openat", "read", "write"},
        ("SCMP_ACT_ERRNO", 38, "[]"): {"keyctl"},
    }


def test_spo_v1_reference_example(convert) -> None:  # type: ignore[no-untyped-def]
    source = REFERENCE / "security-profiles-operator" / "examples" / "baseprofile-runc.yaml"
    run = convert(source, "--to", "json")
    assert run.code == 0
    document = json.loads(run.out)
    assert document["architectures"] == ["SCMP_ARCH_X86_64"]
    assert len(names_of(document)) == 40 and {"openat2", "statx", "faccessat2", "close_range"} <= names_of(
        document
    )


def test_plain_and_legacy_profiles(convert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    legacy = REFERENCE / "moby" / "fixtures" / "default-old-format.json"
    run = convert(legacy, "--to", "json")
    assert run.code == 0
    document = json.loads(run.out)
    no_foreign_keys(document)
    assert "accept" in names_of(document)
    # case 001: the valid part of the legacy file converts to expected.converted.json
    data = json.loads((case("001") / "input.profile.json").read_text())
    data["syscalls"] = data["syscalls"][:2]
    good = convert(write(tmp_path, data), "--to", "json")
    assert semantic(json.loads(good.out)) == semantic(
        json.loads((case("001") / "expected.converted.json").read_text())
    )
    assert '"name"' not in good.out
    refused = convert(case("001") / "input.profile.json", "--to", "json")
    assert refused.code == 2 and not refused.out
    assert "ERROR syscalls[2]:" in refused.err and "ERROR syscalls[3]:" in refused.err


# --- bad input, in the user's terms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "facts"),
    [
        (["--arch", "sparc64"], ['--arch "sparc64" is not an architecture', "amd64"]),
        (["--arch", "arm65"], ['did you mean "arm64"?']),
        (
            ["--caps", "CAP_SYS_ADMN"],
            ['"CAP_SYS_ADMN" is not a Linux capability', 'did you mean "CAP_SYS_ADMIN"?'],
        ),
        (["--kernel", "latest"], ['--kernel "latest" is not a kernel version', '"6.1"']),
    ],
)
def test_bad_options(convert, args: list[str], facts: list[str]) -> None:  # type: ignore[no-untyped-def]
    run = convert(MOBY, "--to", "json", *args)
    assert run.code == 2 and not run.out
    for fact in facts:
        assert fact in run.err


@pytest.mark.parametrize(
    ("profile", "facts"),
    [
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": []},
            ['ERROR archMap: both "architectures" and "archMap" are set'],
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"cap": ["CAP_SYS_ADMIN"]}}
                ],
            },
            [
                'ERROR syscalls[0].includes.cap: "cap" is not a condition Docker or CRI-O knows',
                'did you mean "caps"?',
            ],
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": 4.8}}],
            },
            ['ERROR syscalls[0].excludes.minKernel: got the number 4.8; a kernel version such as "4.8"'],
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALOW", "includes": {}},
                    {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                ],
            },
            ['ERROR syscalls[0].action: "SCMP_ACT_ALOW" is not an OCI seccomp action'],
        ),
    ],
)
def test_bad_profiles(convert, tmp_path: Path, profile: dict[str, Any], facts: list[str]) -> None:  # type: ignore[no-untyped-def]
    run = convert(write(tmp_path, profile), "--to", "json", "--arch", "amd64")
    assert run.code == 2 and not run.out
    for fact in facts:
        assert fact in run.err


def test_rule_paths_refer_to_the_input_after_rules_were_left_out(convert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
            {"names": ["read", "pread"], "action": "SCMP_ACT_ALLOW"},
        ],
    }
    run = convert(write(tmp_path, profile), "--to", "json", "--arch", "amd64")
    assert run.code == 2
    assert 'ERROR syscalls[1].names[1]: "pread" is not a syscall' in run.err


def test_archmap_without_the_target(convert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]}],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
    }
    run = convert(write(tmp_path, profile), "--to", "json", "--arch", "amd64", "--strict")
    assert run.code == 1
    assert "no entry for SCMP_ARCH_X86_64 (amd64)" in run.err
    assert "architectures" not in json.loads(run.out)


def test_many_warnings_are_summarised(convert) -> None:  # type: ignore[no-untyped-def]
    run = convert(MOBY, "--to", "json", "--arch", "amd64")
    assert run.code == 0
    assert len(run.err.splitlines()) == cv.MAX_SHOWN + 1
    assert "more warnings (-v shows them all" in run.err
    verbose = convert(MOBY, "--to", "json", "--arch", "amd64", "-v", "--output", "json")
    assert len(json.loads(verbose.err)) > cv.MAX_SHOWN


def test_parse_helpers() -> None:
    assert cv.parse_arch("x86_64") == "amd64" and cv.parse_arch("SCMP_ARCH_AARCH64") == "arm64"
    assert cv.parse_arch("386") == "386" and cv.make_target("386").seccomp_arch == "x86"
    assert cv.parse_caps(["sys_admin,CAP_NET_ADMIN", "net_admin"]) == ("CAP_SYS_ADMIN", "CAP_NET_ADMIN")
    assert cv.parse_kernel("6.1.0-13-amd64") == (6, 1)
    target = cv.make_target("arm64", ["SYS_PTRACE"], default_caps=False, kernel="5.15")
    assert (
        target.caps == {"CAP_SYS_PTRACE"}
        and target.describe() == "arm64, capabilities: CAP_SYS_PTRACE, kernel 5.15"
    )
    assert cv.detect_format(json.loads(CRIO.read_text())) == "containers-common"
    assert cv.detect_format(json.loads(MOBY.read_text())) == "docker"
    assert cv.detect_format({"defaultAction": "SCMP_ACT_ALLOW"}) == "oci"
