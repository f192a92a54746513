"""Real enforcement: profile files in the operator's on-node layout, run by containerd + runc.

Each profile is written where the agent would write it,
``<kubelet-root>/seccomp/seccomp-operator/<namespace>/<name>.json``
(:func:`seccomp_operator.paths.profile_path`), and a busybox container is run under it with
``ctr run --seccomp --seccomp-profile``.  Needs root, containerd, runc and busybox-static: under
CI a missing piece fails the tests; elsewhere they are skipped (see ``tests.dataplane.require_dataplane``).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import pytest

# The fixtures ``containerd`` and ``busybox_root`` come from tests/dataplane.py via conftest.py.
from seccomp_operator.containerd import Containerd, DataplaneTimeout, ctr, runc_accepts
from seccomp_operator.paths import profile_path

pytestmark = pytest.mark.containerd

NAMESPACE = "team-a"
X86_64 = ["SCMP_ARCH_X86_64"]
BUSYBOX = "/bin/busybox"

#: Allow-list for busybox ``true``/``ls`` plus runc's own start-up, x86_64 (runc 1.1.5, containerd
#: 1.6.20, busybox-static 1.35, Debian 12).  How it was found:
#:
#: 1. Start from the runc base profile of security-profiles-operator
#:    (``examples/baseprofile-runc.yaml``): what runc's init process still calls after it has
#:    loaded the filter (Go runtime, closing its pipes, opening the exec fifo, execve).
#: 2. Add what ``strace -f /bin/busybox ls /`` and ``strace -f /bin/busybox true`` show on the
#:    host that is not in (1): set_robust_list, rseq, prlimit64, readlink, getrandom, ioctl.
#: 3. Check in a container: a ``SCMP_ACT_LOG`` default profile allowing exactly this list logged
#:    no further syscall (kernel audit records type=1326 in dmesg) for ``ls /`` and ``true``;
#:    with ``SCMP_ACT_ERRNO`` default, ``ls /`` and ``true`` succeeded 20 times out of 20.
#: 4. Dropping names one at a time, these are the ones without which start-up or ``ls /`` breaks
#:    every time: arch_prctl, close, execve, exit_group, fstatfs, futex, getdents64, mprotect,
#:    newfstatat, openat, write.  The rest stays because the Go runtime in runc's init uses it
#:    depending on timing (SPO recorded it) or busybox calls it and copes with a denial; a
#:    flaky test would prove nothing.
ALLOW_LIST: tuple[str, ...] = (
    # SPO's runc base profile
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "close",
    "close_range",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit_group",
    "faccessat2",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getpid",
    "getppid",
    "getuid",
    "mmap",
    "mprotect",
    "nanosleep",
    "newfstatat",
    "openat",
    "openat2",
    "prctl",
    "read",
    "recvfrom",
    "rt_sigreturn",
    "sched_yield",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setuid",
    "sigaltstack",
    "statx",
    "tgkill",
    "write",
    # what strace shows busybox (static, glibc-free) needs on top
    "getrandom",
    "ioctl",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
)

x86_64_only = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the allow-list is x86_64 syscall names measured on x86_64"
)


@pytest.fixture
def kubelet_root(tmp_path: Path) -> Path:
    """A temporary kubelet root directory (the agent's ``--kubelet-root``)."""
    root = tmp_path / "kubelet"
    root.mkdir()
    return root


def install_profile(kubelet_root: Path, name: str, profile: dict[str, Any] | str) -> Path:
    """Write ``profile`` (a dict, or raw text) where the agent would; return the file's path."""
    path = Path(profile_path(str(kubelet_root), NAMESPACE, name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile if isinstance(profile, str) else json.dumps(profile, indent=2))
    return path


def deny_mkdir(errno: int) -> dict[str, Any]:
    """Allow everything except mkdir/mkdirat, which fail with ``errno``."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": X86_64,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}],
    }


@pytest.mark.parametrize(
    ("errno", "message"),
    [(13, "Permission denied"), (38, "Function not implemented")],
    ids=["EACCES", "ENOSYS"],
)
def test_denied_syscall_returns_configured_errno(
    containerd: Containerd, busybox_root: Path, kubelet_root: Path, errno: int, message: str
) -> None:
    prof = install_profile(kubelet_root, f"deny-mkdir-{errno}", deny_mkdir(errno))

    denied = containerd.run(prof, [BUSYBOX, "mkdir", "/tmp/x"], busybox_root)
    assert denied.rc != 0, denied.describe()
    assert f"can't create directory '/tmp/x': {message}" in denied.stderr, denied.describe()
    assert not (busybox_root / "tmp" / "x").exists()

    allowed = containerd.run(prof, [BUSYBOX, "ls", "/"], busybox_root)
    assert allowed.ok, allowed.describe()
    assert {"bin", "tmp", "proc"} <= set(allowed.stdout.split()), allowed.describe()


def test_log_default_lets_everything_run(
    containerd: Containerd, busybox_root: Path, kubelet_root: Path
) -> None:
    prof = install_profile(
        kubelet_root, "log-all", {"defaultAction": "SCMP_ACT_LOG", "architectures": X86_64, "syscalls": []}
    )
    result = containerd.run(prof, [BUSYBOX, "mkdir", "/tmp/x"], busybox_root)
    assert result.ok, result.describe()
    assert (busybox_root / "tmp" / "x").is_dir()


def allow_list_profile(names: tuple[str, ...]) -> dict[str, Any]:
    """Deny (EPERM, runc's default errno) everything not in ``names``."""
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": X86_64,
        "syscalls": [{"names": sorted(names), "action": "SCMP_ACT_ALLOW"}],
    }


@x86_64_only
def test_allow_list_runs_ls_and_denies_mkdir(
    containerd: Containerd, busybox_root: Path, kubelet_root: Path
) -> None:
    prof = install_profile(kubelet_root, "allow-list", allow_list_profile(ALLOW_LIST))

    listed = containerd.run(prof, [BUSYBOX, "ls", "/"], busybox_root)
    assert listed.ok, listed.describe()
    assert {"bin", "tmp", "proc"} <= set(listed.stdout.split()), listed.describe()

    true = containerd.run(prof, [BUSYBOX, "true"], busybox_root)
    assert true.ok, true.describe()

    denied = containerd.run(prof, [BUSYBOX, "mkdir", "/tmp/x"], busybox_root)
    assert denied.rc != 0, denied.describe()
    assert "can't create directory '/tmp/x': Operation not permitted" in denied.stderr, denied.describe()
    assert not (busybox_root / "tmp" / "x").exists()


@x86_64_only
def test_allow_list_without_execve_cannot_start(
    containerd: Containerd, busybox_root: Path, kubelet_root: Path
) -> None:
    """The ERRNO default really applies to runc's last step: without execve nothing runs."""
    names = tuple(n for n in ALLOW_LIST if n != "execve")
    prof = install_profile(kubelet_root, "no-execve", allow_list_profile(names))
    result = containerd.run(prof, [BUSYBOX, "true"], busybox_root)
    assert result.rc != 0, result.describe()
    assert "exec /bin/busybox: operation not permitted" in result.stderr, result.describe()


def test_runc_accepts_valid_profiles(containerd: Containerd, busybox_root: Path, kubelet_root: Path) -> None:
    ok, detail = runc_accepts(install_profile(kubelet_root, "deny-mkdir", deny_mkdir(1)), rootfs=busybox_root)
    assert ok, detail
    assert "exited 0" in detail

    # Loaded, but the process cannot start: still accepted by the runtime.
    deny_all = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": X86_64, "syscalls": []}
    ok, detail = runc_accepts(install_profile(kubelet_root, "deny-all", deny_all), rootfs=busybox_root)
    assert ok, detail
    assert "busybox true failed" in detail


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (
            {"defaultAction": "SCMP_ACT_BOGUS", "architectures": X86_64, "syscalls": []},
            "string SCMP_ACT_BOGUS is not a valid action for seccomp",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"], "syscalls": []},
            "string SCMP_ARCH_BOGUS is not a valid arch for seccomp",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}],
            },
            "string SCMP_ACT_NOPE is not a valid action for seccomp",
        ),
        ("{not json", "decoding seccomp profile failed"),
    ],
    ids=["bogus-default-action", "bogus-arch", "bogus-rule-action", "not-json"],
)
def test_runc_rejects_invalid_profiles(
    containerd: Containerd,
    busybox_root: Path,
    kubelet_root: Path,
    profile: dict[str, Any] | str,
    expected: str,
) -> None:
    ok, detail = runc_accepts(install_profile(kubelet_root, "invalid", profile), rootfs=busybox_root)
    assert not ok, detail
    assert expected in detail


def test_private_daemon_lifecycle(containerd: Containerd, busybox_root: Path, tmp_path: Path) -> None:
    """The fallback path CI does not take when a system containerd runs: start, use, stop."""
    daemon = Containerd(default_address=str(tmp_path / "nothing-here.sock"))
    with daemon:
        assert daemon.owned
        workdir = daemon.workdir
        assert workdir is not None
        prof = tmp_path / "allow.json"
        prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}))
        result = daemon.run(prof, [BUSYBOX, "echo", "hello"], busybox_root)
        assert result.ok, result.describe()
        assert result.stdout.strip() == "hello"
    assert not workdir.exists()
    assert daemon._proc is None


def test_run_timeout_kills_and_removes_the_container(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    prof = tmp_path / "allow.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}))
    with pytest.raises(DataplaneTimeout, match="did not finish within 2"):
        containerd.run(prof, [BUSYBOX, "sh", "-c", "while :; do :; done"], busybox_root, timeout=2)
    listing = ctr(["containers", "list", "--quiet"], address=containerd.address)
    assert listing.ok, listing.describe()
    assert not [cid for cid in listing.stdout.split() if cid.startswith(f"sop-{os.getpid()}-")]
