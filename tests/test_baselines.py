"""The baselines in ``examples/baselines``: kept honest against their sources, and run for real.

- Each file is exactly its documented ``convert`` command's output (after the hand-written
  header), so a change to ``convert`` or to the source shows up here.
- The runtime default is compared with CRI-O's and Podman's default
  (``containers-common/seccomp.json``): the differences are the documented lists, no more.
- ``runc-minimal`` plus what ``busybox ls`` needs starts a real container (containerd + runc).
- Under the converted amd64 runtime default, user-namespace ``unshare`` and ``mount`` are
  denied in a real container, while the unconverted moby file given to containerd lets them
  through: the capability-gated rules become unconditional there (case 009).
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator import convert as cv
from seccomp_operator.containerd import Containerd
from seccomp_operator.diff import compare, verdict
from seccomp_operator.render import render_mapping
from seccomp_operator.spec import ProfileSpec, parse_profile
from tests.clitools import Run, run_cli
from tests.conftest import REFERENCE, REPO

BASELINES = REPO / "examples" / "baselines"
MOBY = REFERENCE / "moby" / "default.json"
CRIO = REFERENCE / "containers-common" / "seccomp.json"
SPO_RUNC = REFERENCE / "security-profiles-operator" / "examples" / "baseprofile-runc.yaml"
BUSYBOX = "/bin/busybox"
#: What ``busybox ls /`` and ``busybox true`` call on top of runc's own start-up (x86_64, busybox
#: static 1.35; measured with strace, see tests/test_dataplane.py ALLOW_LIST).
LS_NEEDS = ("getrandom", "ioctl", "prlimit64", "readlink", "rseq", "set_robust_list")

x86_64_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall lists")


def command_in_header(path: Path) -> list[str]:
    """The ``seccomp-operator convert ...`` command written in a baseline's header comment."""
    (line,) = [x for x in path.read_text().splitlines() if x.startswith("#   seccomp-operator convert ")]
    return line.removeprefix("#   seccomp-operator ").split()


def spec_of(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
    return spec


def rendered(path: Path) -> ProfileSpec:
    spec, _ = parse_profile(render_mapping(spec_of(path)).document)
    assert spec is not None
    return spec


# --- kept honest ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["runtime-default-amd64", "runtime-default-arm64", "runc-minimal"])
def test_baseline_is_its_command_output(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = BASELINES / f"{name}.yaml"
    argv = command_in_header(path)
    assert argv[0] == "convert" and argv[1].startswith("../shared/reference/")
    assert f"--name {name}" in " ".join(argv)
    # the command names ../shared relative to the repository root; read the same file in place
    argv[1] = str(REFERENCE / argv[1].removeprefix("../shared/reference/"))
    run: Run = run_cli(argv, capsys, monkeypatch)
    assert run.code == 0
    assert path.read_text().endswith(run.out), f"{path} is not the output of its command; re-run it"
    resource = yaml.safe_load(path.read_text())
    assert resource["metadata"] == {"name": name, "namespace": "default"}
    assert render_mapping(resource["spec"]).document == resource["spec"], "the spec is in normal form"


def test_runtime_default_sources_and_shape() -> None:
    for arch, arches in (
        ("amd64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        ("arm64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
    ):
        spec = spec_of(BASELINES / f"runtime-default-{arch}.yaml")
        assert spec["architectures"] == arches
        assert spec["defaultAction"] == "SCMP_ACT_ERRNO" and spec["defaultErrnoRet"] == 1
        text = json.dumps(spec)
        for key in ("archMap", "includes", "excludes", "comment", "minKernel"):
            assert key not in text
    amd64 = rendered(BASELINES / "runtime-default-amd64.yaml")
    for name in ("mount", "unshare", "setns", "bpf", "reboot", "keyctl", "open_by_handle_at"):
        assert verdict(amd64, name).text == "SCMP_ACT_ERRNO(1)", name
    assert verdict(amd64, "clone3").text == "SCMP_ACT_ERRNO(38)"  # so that glibc falls back to clone
    assert verdict(amd64, "clone").kind == "conditional"  # no namespace flags without CAP_SYS_ADMIN
    assert verdict(amd64, "chroot").kind == "allow"  # CAP_SYS_CHROOT is a default capability
    assert verdict(amd64, "ptrace").kind == "allow"  # moby: kernel >= 4.8
    assert verdict(amd64, "arch_prctl").kind == "allow"
    arm64 = rendered(BASELINES / "runtime-default-arm64.yaml")
    assert verdict(arm64, "arm_fadvise64_64").kind == "allow" and verdict(arm64, "set_tls").kind == "allow"


# --- compared with containers-common ---------------------------------------------------------------------

#: Measured with ``seccomp-operator diff`` (see examples/baselines/README.md): allowed by the
#: runtime default and denied by containers-common, on the main architecture of each node type.
ONLY_RUNTIME_DEFAULT = [
    "cachestat",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "io_pgetevents",
    "map_shadow_stack",
    "vmsplice",
]
#: Allowed by containers-common and denied by the runtime default.
ONLY_CONTAINERS_COMMON = [
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_mempolicy",
    "keyctl",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "pidfd_getfd",
    "pivot_root",
    "reboot",
    "set_mempolicy",
    "setns",
    "syslog",
    "umount2",
    "unshare",
]


@pytest.mark.parametrize(
    ("arch", "main", "errno_only"), [("amd64", "SCMP_ARCH_X86_64", 15), ("arm64", "SCMP_ARCH_AARCH64", 6)]
)
def test_compared_with_containers_common(arch: str, main: str, errno_only: int) -> None:
    target = cv.make_target(arch, kernel="5.4")
    crio = cv.convert_file(str(CRIO), target)
    assert any("setns in syscalls[16]" in f.message for f in crio.findings)  # shadowed rule, see README
    theirs, _ = parse_profile(crio.rendered.document)
    ours = rendered(BASELINES / f"runtime-default-{arch}.yaml")
    assert theirs is not None
    result = compare(ours, theirs, fallback_arch=main)
    assert [x.arch for x in result.arches] == list(ours.architectures)  # same archMap entries
    first = result.arches[0]
    assert first.arch == main
    assert first.only_a == ONLY_RUNTIME_DEFAULT
    assert first.only_b == ONLY_CONTAINERS_COMMON
    assert len(first.errno_only) == errno_only
    assert {(verdict(ours, n).text, verdict(theirs, n).text) for n in first.errno_only} == {
        ("SCMP_ACT_ERRNO(1)", "SCMP_ACT_ERRNO(38)")
    }
    assert [name for name, _, _ in first.different] == ["clone", "personality", "socket"]
    for x in result.arches[1:]:  # the compat ABIs differ by the same calls where they exist
        assert set(x.only_a) - set(ONLY_RUNTIME_DEFAULT) <= {"io_pgetevents_time64"}
        assert set(x.only_b) - set(ONLY_CONTAINERS_COMMON) <= {"signal", "umount"}


def test_baselines_lint_without_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_cli(["lint", *(str(p) for p in sorted(BASELINES.glob("*.yaml")))], capsys, monkeypatch)
    assert run.code == 0
    assert not re.search(r": ERROR ", run.out)


# --- real containers ----------------------------------------------------------------------------------


def write_profile(tmp_path: Path, name: str, document: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.mark.containerd
@x86_64_only
def test_runc_minimal_plus_ls_needs_runs_ls(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    base = spec_of(BASELINES / "runc-minimal.yaml")
    app = {
        "baseProfileName": "runc-minimal",
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": list(LS_NEEDS)}],
    }
    document = render_mapping(
        app, lookup_base=lambda n: base if n == "runc-minimal" else None, name="ls"
    ).document
    profile = write_profile(tmp_path, "ls", document)

    listed = containerd.run(profile, [BUSYBOX, "ls", "/"], busybox_root)
    assert listed.ok, listed.describe()
    assert {"bin", "proc", "tmp"} <= set(listed.stdout.split()), listed.describe()
    denied = containerd.run(profile, [BUSYBOX, "mkdir", "/tmp/x"], busybox_root)
    assert denied.rc != 0 and "Operation not permitted" in denied.stderr, denied.describe()
    assert not (busybox_root / "tmp" / "x").exists()

    # the base is what lets runc finish: ls's own needs alone do not start a container
    alone = {k: v for k, v in app.items() if k != "baseProfileName"}
    without_base = write_profile(tmp_path, "ls-alone", render_mapping(alone).document)
    failed = containerd.run(without_base, [BUSYBOX, "ls", "/"], busybox_root)
    assert failed.rc != 0, failed.describe()


@pytest.mark.containerd
@x86_64_only
def test_converted_runtime_default_denies_unshare_and_mount_raw_moby_does_not(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    converted = write_profile(
        tmp_path,
        "runtime-default-amd64",
        render_mapping(spec_of(BASELINES / "runtime-default-amd64.yaml")).document,
    )

    def run(profile: Path, *argv: str) -> tuple[int, str]:
        result = containerd.run(profile, [BUSYBOX, *argv], busybox_root)
        return result.rc, result.stdout + result.stderr

    # both start a container
    assert run(converted, "true")[0] == 0
    assert run(MOBY, "true")[0] == 0
    # under the converted default, seccomp denies unshare: no namespace at all, with or without caps
    for argv in (["unshare", "-m", "true"], ["unshare", "-U", "true"], ["unshare", "-Urm", "true"]):
        rc, out = run(converted, *argv)
        assert rc != 0 and "Operation not permitted" in out, (argv, out)
    rc, out = run(converted, "unshare", "-Urm", BUSYBOX, "mount", "-t", "tmpfs", "none", "/tmp")
    assert rc != 0 and "Operation not permitted" in out
    rc, out = run(converted, "mount", "-t", "tmpfs", "none", "/tmp")
    assert rc != 0 and "permission denied" in out
    # the same moby file given raw to containerd: its CAP_SYS_ADMIN rule (unshare, mount, ...) applies
    # to every container, so a user namespace (no capability needed) gives a private mount namespace
    assert run(MOBY, "unshare", "-U", "true")[0] == 0
    assert run(MOBY, "unshare", "-Urm", "true")[0] == 0
    rc, out = run(MOBY, "unshare", "-Urm", BUSYBOX, "mount", "-t", "tmpfs", "none", "/tmp")
    assert rc == 0, out
    # what the kernel refuses anyway without CAP_SYS_ADMIN, whatever seccomp says
    rc, out = run(MOBY, "unshare", "-m", "true")
    assert rc != 0 and "Operation not permitted" in out
    rc, out = run(MOBY, "mount", "-t", "tmpfs", "none", "/tmp")
    assert rc != 0 and "permission denied" in out
