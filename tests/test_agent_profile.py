"""The agent's own seccomp profile: shipped, installed, and enforced on the agent's code path.

* The shipped file (``seccomp_operator/data/agent-seccomp.json``) is canonical OCI JSON with
  an EPERM default, allows no high-risk syscall (``policy.HIGH_RISK_SYSCALLS`` and the
  issue's list, checked with the policy module too), creates no namespace through
  ``clone``/``clone3``, and is exactly the recording plus runc's start-up list plus the
  documented margin (rebuilt from ``agent-seccomp.recording.json``).
* ``self-profile install`` writes it atomically where the kubelet resolves the agent's
  ``localhostProfile``, never through a planted link, never creating the kubelet root; a
  garbage-collection pass of the agent leaves it alone.
* With containerd and runc (``@pytest.mark.containerd``): the agent's whole code path
  (``self-profile exercise``: the real agent process against the API emulator) runs in a
  container under the shipped profile and writes exactly the expected bytes; in the same
  container set-up every high-risk syscall fails with EPERM although an allow-all control
  profile shows the kernel would have answered otherwise; and a profile lacking one recorded
  syscall makes the exercise fail, so passing is the profile's doing.
* With strace: a fresh recording of the exercise on this host is covered by the shipped
  profile (else: regenerate with ``seccomp-operator self-profile record``).

Python is not in the busybox root file system, so the container's root is an empty
directory with the host's ``/usr`` and ``/etc``, this interpreter's ``sys.prefix`` and
``sys.base_prefix`` and the directory the package is imported from bind-mounted read-only
at the same paths (Debian's merged ``/usr``: ``/bin``, ``/lib``... are symlinks into it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import seccomp_operator
from seccomp_operator import constants as c
from seccomp_operator import nodefs, paths, policy, render, selfprofile, syscalls
from seccomp_operator.agent import Agent, AgentConfig
from seccomp_operator.containerd import BindMount, Containerd, Result, in_ci
from seccomp_operator.validate import runtime_base

X86_64 = "SCMP_ARCH_X86_64"
#: The syscalls the issue names: the agent's profile must never allow any of them.
ISSUE_FORBIDDEN = (
    "mount",
    "umount2",
    "ptrace",
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "unshare",
    "setns",
    "userfaultfd",
    "perf_event_open",
    "keyctl",
    "add_key",
    "reboot",
    "swapon",
    "pivot_root",
    "open_by_handle_at",
    "process_vm_writev",
)
#: clone(2) flags (linux include/uapi/linux/sched.h): CLONE_NEWUSER with CLONE_FS is refused
#: by the kernel with EINVAL (clone(2), ERRORS), so the control run creates nothing.
CLONE_FS, CLONE_NEWUSER = 0x00000200, 0x10000000
#: Seconds one container run may take (the exercise takes about 10 s on 2 cores).
CONTAINER_TIMEOUT = 300.0
#: Step timeout given to the exercise when it is expected to fail (keeps that test short).
FAILING_STEP_TIMEOUT = 15.0


def require_strace() -> None:
    """Fail under CI (``.ci/install-dataplane.sh`` installs strace), skip elsewhere, without strace."""
    if shutil.which("strace") is not None:
        return
    if in_ci():
        pytest.fail("strace missing under CI (run .ci/install-dataplane.sh)")
    pytest.skip("strace is not installed and CI is not set, so skipping")


def shipped() -> dict[str, Any]:
    """The shipped profile as a JSON object (``defaultAction``, ``syscalls``...)."""
    doc: dict[str, Any] = json.loads(selfprofile.shipped_bytes())
    return doc


# --------------------------------------------------------------------------- the shipped file


def test_shipped_profile_is_canonical_oci_json_with_an_eperm_default() -> None:
    data = selfprofile.shipped_bytes()
    doc = shipped()
    assert render.render_profile_json(data).content == data, "not the canonical rendering of itself"
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO"
    assert doc["defaultErrnoRet"] == errno.EPERM
    assert doc["architectures"] == [X86_64]
    assert set(doc) <= {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}


def test_shipped_profile_allows_no_high_risk_syscall() -> None:
    assert set(ISSUE_FORBIDDEN) <= selfprofile.forbidden()
    assert set(policy.HIGH_RISK_SYSCALLS) <= selfprofile.forbidden()
    allowed = selfprofile.allowed_names(shipped())
    assert not allowed & selfprofile.forbidden(), sorted(allowed & selfprofile.forbidden())
    # The policy guard's own reading (it also sees defaults, LOG and NOTIFY rules) agrees.
    guard = policy.parse_policy(
        {
            "metadata": {"name": "agent"},
            "spec": {"denyAllowAllDefault": True, "deniedSyscalls": sorted(selfprofile.forbidden())},
        }
    )
    assert policy.check(shipped(), "seccomp-operator", [guard]) == []


def test_clone_cannot_create_namespaces_and_clone3_is_enosys() -> None:
    doc = shipped()
    unconditional = selfprofile.allowed_names(doc, unconditional=True)
    assert "clone" not in unconditional and "clone3" not in unconditional
    clone_rules = [r for r in doc["syscalls"] if "clone" in r["names"]]
    assert clone_rules == [
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [
                {
                    "index": 0,
                    "value": selfprofile.CLONE_NAMESPACE_FLAGS,
                    "valueTwo": 0,
                    "op": "SCMP_CMP_MASKED_EQ",
                }
            ],
        }
    ]
    namespace_flags = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
    assert sum(namespace_flags) == selfprofile.CLONE_NAMESPACE_FLAGS
    enosys = [r for r in doc["syscalls"] if r.get("errnoRet") == errno.ENOSYS]
    assert len(enosys) == 1 and "clone3" in enosys[0]["names"]
    assert enosys[0]["action"] == "SCMP_ACT_ERRNO"


def test_shipped_profile_is_the_recording_plus_runc_plus_the_margin() -> None:
    info = selfprofile.shipped_recording()
    data = selfprofile.shipped_bytes()
    assert info["sha256"] == hashlib.sha256(data).hexdigest(), "recording document is stale"
    # Rebuilt with today's margin and runtime list: the same bytes, or the shipped file is stale.
    rebuilt = selfprofile.render_spec(selfprofile.spec_from_recording(info))
    assert rebuilt == data, (
        "the shipped profile is not what the recording, MARGIN and the runc list give: run "
        "`seccomp-operator self-profile record --from-recording "
        "operator/seccomp_operator/data/agent-seccomp.recording.json`"
    )
    runc = set(runtime_base("runc").syscalls)
    recorded = set(info["recorded"])
    margin = set(info["margin"])
    assert margin == {n for n in selfprofile.MARGIN if syscalls.resolve(n, X86_64) is not None}
    assert all(selfprofile.MARGIN[n].strip() for n in margin), "every margin entry says why"
    special = set(selfprofile.ENOSYS_ONLY) | set(selfprofile.CONDITIONAL)
    assert selfprofile.allowed_names(shipped(), unconditional=True) == (recorded | runc | margin) - special
    # What runc's init calls after loading the filter, up to execve of the entry point.
    assert runc <= selfprofile.allowed_names(shipped(), unconditional=True)
    assert info["architecture"] == X86_64 and info["recording"]["machine"] == "x86_64"
    assert info["allowed"] == len(selfprofile.allowed_names(shipped()))
    assert {"execve", "renameat", "fsync", "accept4"} <= recorded, sorted(recorded)


def test_record_refuses_a_recording_with_a_high_risk_syscall() -> None:
    with pytest.raises(selfprofile.SelfProfileError, match="unshare"):
        selfprofile.build_spec({"read", "write", "unshare"}, X86_64)


def test_show_prints_the_shipped_bytes(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from seccomp_operator import cli

    assert cli.main(["self-profile", "show"]) == 0
    assert capsysbinary.readouterr().out == selfprofile.shipped_bytes()


def test_record_from_recording_reproduces_the_shipped_file(tmp_path: Path) -> None:
    source = selfprofile.source_data_dir() / c.SELF_PROFILE_RECORDING
    out, rec = tmp_path / "agent.json", tmp_path / "agent.recording.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seccomp_operator.cli",
            "self-profile",
            "record",
            f"--from-recording={source}",
            f"--output={out}",
            f"--recording-output={rec}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == selfprofile.shipped_bytes()
    assert json.loads(rec.read_text()) == selfprofile.shipped_recording()


# --------------------------------------------------------------------------- installing on the node


def test_install_writes_the_file_the_kubelet_resolves(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    first = selfprofile.install(str(root))
    target = root / "seccomp" / c.SELF_PROFILE_LOCALHOST
    assert first.path == str(target) == str(selfprofile.self_profile_path(str(root)))
    assert first.changed and target.read_bytes() == selfprofile.shipped_bytes()
    assert (target.stat().st_mode & 0o777, target.parent.stat().st_mode & 0o777) == (0o644, 0o755)
    inode = target.stat().st_ino
    again = selfprofile.install(str(root))
    assert not again.changed and target.stat().st_ino == inode, "nothing is written when the bytes match"
    assert not list(target.parent.glob(c.TEMP_PREFIX + "*"))
    # Outside the managed directory: nothing the agent writes or lists is there.
    assert not target.is_relative_to(Path(paths.managed_dir(str(root))))


def test_install_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    own = root / "seccomp" / c.SELF_PROFILE_SUBDIR
    own.mkdir(parents=True)
    (own / c.SELF_PROFILE_FILE).symlink_to(victim)
    assert selfprofile.install(str(root)).changed
    assert victim.read_text() == "keep me\n"
    assert not (own / c.SELF_PROFILE_FILE).is_symlink()
    assert (own / c.SELF_PROFILE_FILE).read_bytes() == selfprofile.shipped_bytes()


def test_install_refuses_a_symlinked_directory_and_a_missing_kubelet_root(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "seccomp").mkdir(parents=True)
    (root / "seccomp" / c.SELF_PROFILE_SUBDIR).symlink_to(elsewhere)
    with pytest.raises(nodefs.UnsafeEntry, match="symlink"):
        selfprofile.install(str(root))
    assert list(elsewhere.iterdir()) == []

    missing = tmp_path / "no-such-kubelet"
    with pytest.raises(nodefs.KubeletRootMissing):
        selfprofile.install(str(missing))
    assert not missing.exists()


def test_install_command_exit_codes(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    argv = [sys.executable, "-m", "seccomp_operator.cli", "self-profile", "install"]
    done = subprocess.run([*argv, f"--kubelet-root={root}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "written" in done.stdout and str(selfprofile.self_profile_path(str(root))) in done.stdout
    again = subprocess.run([*argv, f"--kubelet-root={root}"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already up to date" in again.stdout
    bad = subprocess.run(
        [*argv, f"--kubelet-root={tmp_path / 'missing'}"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr


async def test_garbage_collection_leaves_the_agents_own_profile_alone(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    own = Path(selfprofile.install(str(root)).path)
    before = own.stat()
    agent = Agent(AgentConfig(node_name="node-1", kubelet_root=str(root)), api=None)
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read"]}]}
    kept = {"metadata": {"namespace": "team-a", "name": "kept"}, "spec": spec}
    doomed = {"metadata": {"namespace": "team-a", "name": "doomed"}, "spec": spec}
    agent.observe("ADDED", kept)
    agent.observe("ADDED", doomed)
    await agent.step()
    doomed_file = Path(paths.profile_path(str(root), "team-a", "doomed"))
    assert doomed_file.is_file()
    # A file of a profile deleted while the agent was down, and one deleted now: both collected.
    ghost = Path(paths.profile_path(str(root), "team-b", "ghost"))
    ghost.parent.mkdir()
    ghost.write_bytes(doomed_file.read_bytes())
    agent.observe("DELETED", doomed)
    agent.request_full()
    await agent.step()
    assert not doomed_file.exists() and not ghost.exists(), "the garbage collection pass did not run"
    assert Path(paths.profile_path(str(root), "team-a", "kept")).is_file()
    after = own.stat()
    assert own.read_bytes() == selfprofile.shipped_bytes()
    assert (after.st_ino, after.st_mtime_ns, after.st_nlink) == (before.st_ino, before.st_mtime_ns, 1)


# --------------------------------------------------------------------------- in a container


def host_python_rootfs(directory: Path) -> tuple[Path, list[BindMount]]:
    """A root file system running this Python and this package from the host, read-only.

    Returns ``(rootfs, mounts)``: ``rootfs`` has empty ``proc``, ``dev``, ``sys``, ``run``,
    ``tmp``, ``etc``, and the host's top-level symlinks (``bin -> usr/bin``...); ``mounts``
    bind the host's ``/usr``, ``/etc``, ``sys.prefix``, ``sys.base_prefix``, the directory
    the package is imported from, and any real top-level library directory, parents first,
    nested ones left out.
    """
    rootfs = directory / "rootfs"
    for name in ("proc", "dev", "sys", "run", "tmp", "etc"):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    package_root = Path(seccomp_operator.__file__).resolve().parents[1]
    sources = {
        "/usr",
        "/etc",
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        str(package_root),
    }
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        host = Path(top)
        if host.is_symlink():
            (rootfs / top[1:]).symlink_to(os.readlink(host))
        elif host.is_dir():
            sources.add(top)
    ordered: list[str] = []
    for source in sorted(sources):
        if not any(Path(source).is_relative_to(kept) for kept in ordered):
            ordered.append(source)
    return rootfs, [BindMount(s) for s in ordered]


def python_argv(*args: str) -> list[str]:
    """This Python with the image's environment (no bytecode written, unbuffered output)."""
    env = Path("/usr/bin/env")
    assert env.is_file(), "coreutils' env is needed in the container"
    return [str(env), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", sys.executable, *args]


def require_x86_64() -> None:
    """Skip on other architectures: the shipped profile lists ``SCMP_ARCH_X86_64`` only."""
    if syscalls.native_arch() != X86_64:
        pytest.skip("the shipped profile is recorded on x86_64")


def run_exercise(containerd: Containerd, profile: Path, tmp_path: Path, *extra: str) -> tuple[Result, Path]:
    """``self-profile exercise`` in a container under ``profile``; ``(result, workdir on the host)``.

    The container's ``/out`` is ``tmp_path/out`` (read-write); the exercise's work directory
    (kubelet root and ``agent.log``) is ``/out/work`` inside, returned as its host path.
    Raises ``DataplaneTimeout`` after :data:`CONTAINER_TIMEOUT` seconds.
    """
    rootfs, mounts = host_python_rootfs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    argv = python_argv(
        "-m", "seccomp_operator.cli", "self-profile", "exercise", "--workdir=/out/work", *extra
    )
    result = containerd.run(
        profile,
        argv,
        rootfs,
        CONTAINER_TIMEOUT,
        mounts=[*mounts, BindMount(str(out), "/out", readonly=False)],
    )
    return result, out / "work"


def shipped_profile_file(tmp_path: Path) -> Path:
    """A copy of the shipped profile in ``tmp_path`` (ctr reads it by path)."""
    path = tmp_path / "agent-seccomp.json"
    path.write_bytes(selfprofile.shipped_bytes())
    return path


@pytest.mark.containerd
def test_the_agents_code_path_runs_in_a_container_under_the_shipped_profile(
    containerd: Containerd, tmp_path: Path
) -> None:
    require_x86_64()
    result, work = run_exercise(containerd, shipped_profile_file(tmp_path), tmp_path)
    log = (work / "agent.log").read_text(errors="replace") if (work / "agent.log").exists() else ""
    assert result.ok, f"{result.describe()}\nagent.log:\n{log[-6000:]}"
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["agentExit"] == 0
    plan = selfprofile.scenario()
    # The bytes the agent wrote in the container are the renderings made here, outside it.
    bodies = plan.final_bodies()
    kubelet = work / "kubelet"
    for key, body in bodies.items():
        ns, name = paths.split_key(key)
        path = Path(paths.profile_path(str(kubelet), ns, name))
        if key in plan.absent():
            assert not path.exists(), key
            continue

        def lookup(base: str, ns: str = ns) -> Any:
            found = bodies.get(paths.profile_key(ns, base))
            return found["spec"] if found else None

        expected = render.render_mapping(body["spec"], lookup_base=lookup, name=name).content
        assert path.read_bytes() == expected, key
        assert path.stat().st_mode & 0o777 == 0o644, key
    deleted = paths.split_key(plan.deleted)
    assert not Path(paths.profile_path(str(kubelet), *deleted)).exists()
    assert sorted(report["files"]) == sorted(k for k in bodies if k not in plan.absent())
    # The agent's own profile, installed first, was left alone by its garbage collection.
    own = kubelet / "seccomp" / c.SELF_PROFILE_LOCALHOST
    assert own.read_bytes() == selfprofile.shipped_bytes()
    # Nothing failed quietly inside: the only error the agent logged is the invalid profile.
    errors = [line for line in log.splitlines() if "level=ERROR" in line]
    assert errors and all(f"profile={plan.invalid}" in line for line in errors), "\n".join(errors)
    assert "Operation not permitted" not in log


PROBE = r"""
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
results = {}
for name, (number, args) in json.loads(sys.argv[1]).items():
    ctypes.set_errno(0)
    value = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    results[name] = 0 if value >= 0 else ctypes.get_errno()
print(json.dumps(results))
"""


def probe_calls() -> dict[str, tuple[int, list[int]]]:
    """Every forbidden syscall of this architecture with arguments the kernel refuses harmlessly.

    Default arguments are all -1 (bad descriptors, addresses and flags).  Four calls get
    arguments with a known answer without a filter: ``unshare(0)`` succeeds and changes
    nothing; ``setns(-1, 0)`` is EBADF; ``clone(CLONE_NEWUSER|CLONE_FS)`` is EINVAL;
    ``clone3(NULL, 0)`` is EINVAL (size below CLONE_ARGS_SIZE_VER0) -- clone(2), unshare(2),
    setns(2).
    """
    special: dict[str, list[int]] = {
        "unshare": [0],
        "setns": [-1, 0],
        "clone": [CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0],
        "clone3": [0, 0],
    }
    calls: dict[str, tuple[int, list[int]]] = {}
    for name in sorted(selfprofile.forbidden() | set(special)):
        number = syscalls.resolve(name, X86_64)
        if number is not None:
            calls[name] = (number, special.get(name, [-1] * 6))
    return calls


@pytest.mark.containerd
def test_forbidden_syscalls_fail_with_eperm_in_the_same_container_setup(
    containerd: Containerd, tmp_path: Path
) -> None:
    require_x86_64()
    rootfs, mounts = host_python_rootfs(tmp_path)
    calls = probe_calls()
    assert set(ISSUE_FORBIDDEN) <= set(calls)
    argv = python_argv("-c", PROBE, json.dumps(calls))
    control_profile = tmp_path / "allow-all.json"
    control_profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    control = containerd.run(control_profile, argv, rootfs, CONTAINER_TIMEOUT, mounts=mounts)
    assert control.ok, control.describe()
    confined = containerd.run(shipped_profile_file(tmp_path), argv, rootfs, CONTAINER_TIMEOUT, mounts=mounts)
    assert confined.ok, confined.describe()
    without, under = json.loads(control.stdout), json.loads(confined.stdout)

    # runc answers ENOSYS, not the default action, for syscalls newer than every syscall the
    # profile names (the "-ENOSYS stub" of libcontainer/seccomp/patchbpf/enosys_linux.go), so
    # that programs fall back; those are refused as well.
    newest = max(
        number
        for rule in shipped()["syscalls"]
        for name in rule["names"]
        if (number := syscalls.resolve(name, X86_64)) is not None
    )
    expected = {
        name: errno.ENOSYS if name in selfprofile.ENOSYS_ONLY or number > newest else errno.EPERM
        for name, (number, _) in calls.items()
    }
    assert under == expected, {k: errno.errorcode.get(v, v) for k, v in under.items() if v != expected[k]}
    assert all(under[name] == errno.EPERM for name in ISSUE_FORBIDDEN), under
    # Without the filter the kernel answers these otherwise: the EPERM is the profile's.
    assert without["unshare"] == 0
    assert without["setns"] == errno.EBADF
    assert without["clone"] == errno.EINVAL and without["clone3"] == errno.EINVAL
    decided_by_filter = sorted(n for n in calls if without[n] != under[n])
    assert len(decided_by_filter) >= len(calls) // 2, {
        k: errno.errorcode.get(v, v) for k, v in without.items()
    }


@pytest.mark.containerd
def test_the_exercise_fails_under_a_profile_missing_one_recorded_syscall(
    containerd: Containerd, tmp_path: Path
) -> None:
    require_x86_64()
    assert "renameat" in selfprofile.shipped_recording()["recorded"], "nodefs replaces files with renameat"
    doc = shipped()
    for rule in doc["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW" and "renameat" in rule["names"]:
            rule["names"].remove("renameat")
    narrowed = tmp_path / "without-renameat.json"
    narrowed.write_text(json.dumps(doc))
    result, work = run_exercise(containerd, narrowed, tmp_path, f"--step-timeout={FAILING_STEP_TIMEOUT:g}")
    assert result.rc == 1, result.describe()
    # The exercise writes the agent's own profile first (as the init container does), with the
    # same nodefs code as the agent: the refused rename stops it there or in the agent.
    log = (work / "agent.log").read_text(errors="replace") if (work / "agent.log").exists() else ""
    said = result.stderr + log
    assert "renaming temporary file to" in said and "Operation not permitted" in said, said[-3000:]


# --------------------------------------------------------------------------- recording on this host


def test_a_fresh_recording_here_is_covered_by_the_shipped_profile(tmp_path: Path) -> None:
    require_strace()
    require_x86_64()
    out, rec = tmp_path / "agent.json", tmp_path / "agent.recording.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seccomp_operator.cli",
            "self-profile",
            "record",
            f"--output={out}",
            f"--recording-output={rec}",
        ],
        capture_output=True,
        text=True,
        timeout=selfprofile.RECORD_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    fresh = json.loads(rec.read_text())
    assert not selfprofile.allowed_names(json.loads(out.read_bytes())) & selfprofile.forbidden()
    # clone3 is answered with ENOSYS on purpose (glibc then uses clone, which is allowed).
    seen = set(fresh["recorded"]) - set(selfprofile.ENOSYS_ONLY)
    missing = sorted(seen - selfprofile.allowed_names(shipped()))
    assert not missing, (
        f"the agent now calls {missing}, which the shipped profile refuses: regenerate it with "
        "`seccomp-operator self-profile record` and review the difference"
    )
