"""``seccomp-operator probe``: what the seccomp filter of a process blocks, found by trying.

The container tests run the probe with containerd and runc in a container whose root
filesystem is an empty directory plus read-only bind mounts of the host's ``/usr``, this
Python and this project's environment, under profiles whose effect is known.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import seccomp_operator
from seccomp_operator import probe, syscalls
from seccomp_operator.containerd import BindMount, Containerd, Result
from seccomp_operator.probe import Outcome, ProbeReport, SeccompStatus, Verdict

X86_64 = "SCMP_ARCH_X86_64"

#: Denied with EPERM in the test profile: calls that neither runc's last steps nor Python's
#: start-up nor the probe itself make, and that the probe's arguments do not get EPERM for
#: without a filter (none is capability-gated).
DENIED_EPERM = (
    "add_key",
    "chroot",
    "keyctl",
    "link",
    "linkat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "ptrace",
    "request_key",
    "rmdir",
    "setns",
    "symlink",
    "symlinkat",
    "unshare",
)
#: Killed (SIGSYS) in the test profile.
KILLED = ("vmsplice",)
#: Denied with EACCES: indistinguishable from an ordinary error without --expect.
DENIED_EACCES = ("getpriority",)


def known_profile(eperm: tuple[str, ...] = DENIED_EPERM) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [X86_64],
        "syscalls": [
            {"names": sorted(eperm), "action": "SCMP_ACT_ERRNO"},
            {"names": list(KILLED), "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": list(DENIED_EACCES), "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        ],
    }


x86_64_only = pytest.mark.skipif(syscalls.native_arch() != X86_64, reason="the profiles name x86_64 syscalls")


# --------------------------------------------------------------------------- units


def test_read_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(
        "Name:\tpython\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\nCapEff:\t00000000a80425fb\n"
    )
    assert probe.read_status(status) == SeccompStatus("filtering", 3, 0xA80425FB, True)
    status.write_text("Name:\tpython\nSeccomp:\t0\nCapEff:\t000001ffffffffff\n")
    assert probe.read_status(status) == SeccompStatus("disabled", None, 0x1FFFFFFFFFF, False)
    status.write_text("Name:\tpython\n")  # a kernel without CONFIG_SECCOMP
    assert probe.read_status(status).mode == "unknown"


def test_kernel_syscalls_from_kallsyms(tmp_path: Path) -> None:
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(
        "0000000000000000 T __x64_sys_read\n"
        "0000000000000000 T __x64_sys_newuname\n"
        "0000000000000000 W __x64_sys_kexec_load\n"
        "0000000000000000 T __ia32_sys_read\n"
        "0000000000000000 t some_function\n"
    )
    assert probe.kernel_syscalls(X86_64, kallsyms) == frozenset({"read", "uname"})
    kallsyms.write_text("0000000000000000 T some_function\n")
    assert probe.kernel_syscalls(X86_64, kallsyms) is None  # no syscall symbols: unknown
    assert probe.kernel_syscalls(X86_64, tmp_path / "missing") is None


def test_native_table_covers_the_known_syscalls() -> None:
    table = dict(probe.native_syscalls(syscalls.native_arch()))
    assert len(table) > 300
    assert all(syscalls.resolve(name, syscalls.native_arch()) == nr for name, nr in table.items())


def outcome(name: str, verdict: Verdict, status: int | None = None, sig: int | None = None) -> Outcome:
    return Outcome(name, 0, status, sig, False, verdict, "")


def test_expectations_and_compare() -> None:
    document = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["read", "write", "mkdir"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir", "ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }
    names = ["read", "mkdir", "ptrace", "getpid", "socket", "uselib", "chroot", "reboot"]
    exp = probe.expectations(document, names)
    assert exp["read"].kind == "allow"
    assert exp["mkdir"].kind == "allow"  # the first rule naming it decides
    assert (exp["ptrace"].kind, exp["ptrace"].errno) == ("errno", 1)
    assert exp["getpid"].kind == "kill"
    assert exp["socket"].kind == "conditional"
    assert (exp["chroot"].kind, exp["chroot"].errno, exp["chroot"].source) == ("errno", 38, "defaultAction")

    report = ProbeReport(
        SeccompStatus("filtering", 1, 0),
        X86_64,
        [
            outcome("read", Verdict.ALLOWED, 9),
            outcome("mkdir", Verdict.BLOCKED, 1),  # differs: the profile allows it
            outcome("ptrace", Verdict.BLOCKED, 1),
            outcome("getpid", Verdict.BLOCKED, None, signal.SIGSYS),
            outcome("socket", Verdict.ALLOWED, 22),
            outcome("uselib", Verdict.ABSENT, 38),  # ENOSYS expected, and the kernel lacks it
            outcome("chroot", Verdict.ALLOWED, 14),  # differs: the profile denies it
            outcome("reboot", Verdict.AMBIGUOUS, 1),  # EPERM, but not the expected ENOSYS: not compared
        ],
        0.1,
        True,
    )
    differences, uncompared = probe.compare(report, exp)
    assert [(d.name, d.expected, d.observed) for d in differences] == [
        ("chroot", "denied with ENOSYS", "allowed (EFAULT)"),
        ("mkdir", "allowed", "blocked (EPERM)"),
    ]
    assert uncompared == ["reboot", "socket"]


def test_text_report_is_amicontained_style() -> None:
    report = ProbeReport(
        SeccompStatus("filtering", 2, 0),
        X86_64,
        [outcome("mkdir", Verdict.BLOCKED, 1), outcome("read", Verdict.ALLOWED, 9)],
        0.25,
        True,
    )
    lines = report.text().splitlines()
    assert lines[:4] == ["Seccomp: filtering", "Seccomp filters: 2", "Blocked Syscalls (1):", "    MKDIR"]
    assert lines[-1] == f"Probed 2 syscalls of {X86_64} in 0.25s."


# --------------------------------------------------------------------------- host


def test_probe_on_the_host_reports_disabled_where_it_is() -> None:
    if probe.read_status().mode != "disabled":
        pytest.skip("this test process runs under a seccomp filter, so the host case cannot be shown")
    result = subprocess.run(
        [sys.executable, "-m", "seccomp_operator.probe"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Seccomp: disabled"
    assert "Blocked Syscalls (0):" in lines
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "seccomp_operator.probe", "--output", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
    )
    assert data["seccomp"] == "disabled" and data["blocked"] == []
    assert data["probed"] == len(probe.native_syscalls(syscalls.native_arch()))
    # Through the full command (which re-executes the lighter module for faster forks).
    full = subprocess.run(
        [sys.executable, "-m", "seccomp_operator.cli", "probe", "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert full.returncode == 0, full.stderr
    assert full.stdout.splitlines()[0] == "Seccomp: disabled"
    assert "Blocked Syscalls (0):" in full.stdout.splitlines()


def children() -> set[int]:
    """Pids whose parent is this process, zombies included (from ``/proc/<pid>/stat``)."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def test_probe_is_bounded_and_leaves_no_children() -> None:
    # Other children may exist (a private containerd started by a session fixture): only
    # the probe's own must be gone, reaped, not left as zombies.
    before = children()
    report = probe.probe(names=["pause", "getpid", "exit_group", "fork", "vfork"], timeout=5.0)
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["pause"].timed_out and by_name["pause"].verdict is Verdict.ALLOWED
    assert by_name["exit_group"].result == "exited"
    assert report.seconds < 5.0  # pause was seen sleeping in the call, not waited for
    assert children() <= before


# --------------------------------------------------------------------------- in a container


def python_rootfs(root: Path) -> tuple[Path, list[BindMount]]:
    """An empty root plus read-only binds of /usr, this Python, the venv and the package sources."""
    root.mkdir(parents=True)
    mounts = [BindMount("/usr")]
    for top in ("bin", "sbin", "lib", "lib64"):
        host = Path("/") / top
        if host.is_symlink():  # merged /usr: bin -> usr/bin
            (root / top).symlink_to(os.readlink(host))
        elif host.is_dir():
            mounts.append(BindMount(str(host)))
    if Path("/etc/ld.so.cache").is_file():
        mounts.append(BindMount("/etc/ld.so.cache"))
    package_root = Path(seccomp_operator.__file__).resolve().parents[1]
    for path in {Path(sys.base_prefix).resolve(), Path(sys.prefix), package_root}:
        if not path.is_relative_to("/usr"):
            mounts.append(BindMount(str(path)))
    return root, mounts


@pytest.fixture
def python_root(tmp_path: Path) -> tuple[Path, list[BindMount]]:
    return python_rootfs(tmp_path / "rootfs")


def run_probe(
    containerd: Containerd,
    profile: dict[str, Any],
    python_root: tuple[Path, list[BindMount]],
    tmp_path: Path,
    *args: str,
    files: dict[str, str] | None = None,
) -> Result:
    """Run ``python -m seccomp_operator.probe ARGS`` in a container under ``profile``."""
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (shared / name).write_text(text)
    path = shared / "profile.json"
    path.write_text(json.dumps(profile))
    root, mounts = python_root
    argv = [sys.executable, "-m", "seccomp_operator.probe", *args]
    return containerd.run(path, argv, root, timeout=180, mounts=[*mounts, BindMount(str(shared))])


@pytest.mark.containerd
@x86_64_only
def test_probe_in_a_container_reports_exactly_the_denied_set(
    containerd: Containerd, python_root: tuple[Path, list[BindMount]], tmp_path: Path
) -> None:
    result = run_probe(containerd, known_profile(), python_root, tmp_path)
    assert result.ok, result.describe()
    lines = result.stdout.splitlines()
    assert lines[0] == "Seccomp: filtering"
    expected = sorted((*DENIED_EPERM, *KILLED))
    header = lines.index(f"Blocked Syscalls ({len(expected)}):")
    body: list[str] = []
    for line in lines[header + 1 :]:
        if not line.startswith("    "):
            break
        body.extend(line.split())
    assert body == [n.upper() for n in expected], result.stdout

    as_json = run_probe(containerd, known_profile(), python_root, tmp_path, "--output", "json")
    assert as_json.ok, as_json.describe()
    data = json.loads(as_json.stdout)
    assert data["blocked"] == expected
    per_name = {s["name"]: s for s in data["syscalls"]}
    assert {per_name[n]["errno"] for n in DENIED_EPERM} == {1}
    assert per_name["vmsplice"]["signal"] == "SIGSYS"
    # EACCES from the filter looks like an ordinary error: reported as allowed, with its errno.
    assert per_name["getpriority"]["errno"] == 13 and per_name["getpriority"]["verdict"] == "allowed"
    # runc gives containers no CAP_SYS_BOOT: reboot's EPERM is ambiguous, never "blocked".
    assert per_name["reboot"]["verdict"] == "ambiguous"
    assert "CAP_SYS_BOOT" in per_name["reboot"]["reason"]
    assert data["probed"] == len(probe.native_syscalls(X86_64))
    print(f"probe in a container: {data['probed']} syscalls in {data['seconds']}s")


@pytest.mark.containerd
@x86_64_only
def test_probe_under_a_log_default_blocks_nothing(
    containerd: Containerd, python_root: tuple[Path, list[BindMount]], tmp_path: Path
) -> None:
    profile = {"defaultAction": "SCMP_ACT_LOG", "architectures": [X86_64]}
    result = run_probe(containerd, profile, python_root, tmp_path)
    assert result.ok, result.describe()
    assert result.stdout.splitlines()[0] == "Seccomp: filtering"
    assert "Blocked Syscalls (0):" in result.stdout.splitlines()


@pytest.mark.containerd
@x86_64_only
def test_expect_passes_for_the_profile_and_lists_differences_for_a_wrong_one(
    containerd: Containerd, python_root: tuple[Path, list[BindMount]], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    right = json.dumps(known_profile())
    wrong_denied = (*(n for n in DENIED_EPERM if n != "chroot"), "mount")
    wrong = yaml.safe_dump(
        {
            "apiVersion": "seccomp-operator.dev/v1alpha1",
            "kind": "SeccompProfile",
            "metadata": {"name": "wrong", "namespace": "team-a"},
            "spec": known_profile(wrong_denied),
        }
    )
    files = {"right.json": right, "wrong.yaml": wrong}

    ok = run_probe(
        containerd,
        known_profile(),
        python_root,
        tmp_path,
        "--expect",
        str(shared / "right.json"),
        files=files,
    )
    assert ok.rc == 0, ok.describe()
    assert f"Matches {shared / 'right.json'}." in ok.stdout

    bad = run_probe(
        containerd,
        known_profile(),
        python_root,
        tmp_path,
        "--expect",
        str(shared / "wrong.yaml"),
        files=files,
    )
    assert bad.rc == 1, bad.describe()
    section = bad.stdout[bad.stdout.index("Differences from") :].splitlines()
    assert section[0] == f"Differences from {shared / 'wrong.yaml'} (2):"
    assert section[1].startswith(
        "    chroot: the profile says allowed (defaultAction), probed blocked (EPERM)"
    )
    assert section[2].startswith(
        "    mount: the profile says denied with EPERM (syscalls[0]), probed allowed"
    )
