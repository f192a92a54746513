"""``seccomp-operator record`` / ``generate``: strace logs and summaries become profiles.

Case 018 is read in place; the raw-log forms come from a small log written here (strace 6.1
``-f -tt`` style); the data-plane test records ``busybox ls /`` on the host with the real
strace, installs the profile through the agent and runs the command under it with containerd.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator import record, syscalls
from seccomp_operator.agent import Agent, AgentConfig
from seccomp_operator.containerd import Containerd
from seccomp_operator.paths import profile_path
from seccomp_operator.render import render_mapping
from seccomp_operator.validate import runtime_base
from tests.conftest import CASES

X86_64 = "SCMP_ARCH_X86_64"
CASE_018 = CASES / "018-strace-c-summary"


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = record.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def allowed_names(spec: dict[str, Any]) -> set[str]:
    return {n for r in spec["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}


# --------------------------------------------------------------------------- case 018


def test_case_018_generate_from_strace_summary_is_exactly_the_expected_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(
        ["generate", "--from-strace-summary", str(CASE_018 / "input.strace-c.txt"), "--arch", "x86_64"],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out) == json.loads((CASE_018 / "expected.generated.json").read_text())
    # SHOULD: a summary has no arguments, and the runtime's start-up syscalls are not in it.
    assert "no arguments" in err
    assert "no runtime start-up list merged" in err
    assert "total" not in out


def test_case_018_summary_row_forms_and_total_row() -> None:
    rec = record.parse_strace_summary((CASE_018 / "input.strace-c.txt").read_text(), X86_64)
    counts = rec.counts[X86_64]
    assert len(counts) == 37
    assert "total" not in counts
    assert counts["openat"] == 69 and rec.errors[X86_64]["openat"] == 26  # row with errors
    assert counts["mmap"] == 60 and rec.errors[X86_64]["mmap"] == 0  # row without errors
    assert rec.total() == 359  # the total row's calls, though the row itself is skipped
    assert not rec.has_arguments


def test_case_018_record_from_log_merges_runtime_list_and_annotates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(
        ["record", "--from-log", str(CASE_018 / "input.strace-c.txt"), "--arch", "x86_64", "--name", "sh"],
        capsys,
    )
    assert code == 0, err
    resource = yaml.safe_load(out)
    spec = resource["spec"]
    assert resource["apiVersion"] == "seccomp-operator.dev/v1alpha1"
    assert resource["kind"] == "SeccompProfile"
    assert resource["metadata"]["name"] == "sh"
    summary_names = set(
        json.loads((CASE_018 / "expected.generated.json").read_text())["syscalls"][0]["names"]
    )
    runc = set(runtime_base("runc").syscalls)
    assert allowed_names(spec) == summary_names | runc
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO" and spec["defaultErrnoRet"] == errno.EPERM
    # EPERM default: clone3 (not recorded, not in runc's list) gets ENOSYS so glibc falls back.
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in spec["syscalls"]
    annotations = resource["metadata"]["annotations"]
    info = json.loads(annotations[record.RECORDED_ANNOTATION])
    assert info["architecture"] == X86_64 and info["runtime"].startswith("runc@")
    assert "summary" in info["note"]
    counts = json.loads(annotations[record.COUNTS_ANNOTATION])
    assert counts[X86_64]["openat"] == 69 and counts[X86_64]["wait4"] == 4
    # The resource renders without findings that are errors (render raises on errors).
    render_mapping(spec)


# --------------------------------------------------------------------------- raw strace -f logs

#: A small ``strace -f -tt -o LOG`` log in strace 6.1's format, with every form the parser
#: must handle: pid prefixes (``N`` and ``[pid N]``), time stamps, unfinished/resumed pairs,
#: signals, exits, a kill, restart_syscall, numeric syscall names, a 32-bit process, strace's
#: own messages and a line that is not strace output.
RAW_LOG = """\
3101  10:15:02.000101 execve("/usr/bin/app", ["app", "--serve"], 0x7ffd6b1a2c40 /* 9 vars */) = 0
3101  10:15:02.000205 brk(NULL)         = 0x5612a0c3d000
3101  10:15:02.000311 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
3101  10:15:02.000402 openat(AT_FDCWD, "/etc/app.conf", O_RDONLY) = -1 ENOENT (No such file or directory)
3101  10:15:02.000518 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD, exit_signal=0, \
stack=0x7f3e1c000000, stack_size=0x7fff00}, 88) = 3102
strace: Process 3102 attached
3102  10:15:02.000601 set_robust_list(0x7f3e1c7ff9a0, 24 <unfinished ...>
3101  10:15:02.000610 futex(0x7f3e1c7ff910, FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, 3102, NULL, \
FUTEX_BITSET_MATCH_ANY <unfinished ...>
3102  10:15:02.000622 <... set_robust_list resumed>) = 0
3102  10:15:02.000700 nanosleep({tv_sec=0, tv_nsec=20000000},  <unfinished ...>
3101  10:15:02.000805 --- SIGALRM {si_signo=SIGALRM, si_code=SI_KERNEL} ---
3101  10:15:02.000811 <... futex resumed>) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)
3101  10:15:02.000820 rt_sigreturn({mask=[]}) = 202
3102  10:15:02.020950 <... nanosleep resumed>NULL) = 0
3101  10:15:02.021004 restart_syscall(<... resuming interrupted futex ...>) = 0
3102  10:15:02.021100 syscall_0x1c5(0x1000, 0x1000, 0x1) = -1 ENOSYS (Function not implemented)
3102  10:15:02.021150 syscall_0x3e7(0, 0, 0) = -1 ENOSYS (Function not implemented)
3102  10:15:02.021200 exit(0)          = ?
3102  10:15:02.021260 +++ exited with 0 +++
[pid  3103] 10:15:02.022000 getpid()    = 3103
[pid  3103] 10:15:02.022100 +++ killed by SIGKILL +++
3101  10:15:02.030000 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_KILLED, si_pid=3103, si_status=SIGKILL} ---
[ Process PID=3104 runs in 32 bit mode. ]
3104  10:15:02.031000 mmap2(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0xf7f00000
3104  10:15:02.031100 exit_group(0)    = ?
3104  10:15:02.031150 +++ exited with 0 +++
app: listening on :8080
3101  10:15:02.040000 write(1, "ok\\n", 3) = 3
3101  10:15:02.040100 exit_group(0)    = ?
3101  10:15:02.040200 +++ exited with 0 +++
"""


def test_raw_log_forms() -> None:
    rec = record.parse_strace_log(RAW_LOG, X86_64)
    counts = rec.counts[X86_64]
    # Unfinished/resumed pairs count once, on the unfinished line.
    assert counts["set_robust_list"] == 1
    assert counts["futex"] == 1
    assert counts["nanosleep"] == 1
    assert counts["openat"] == 2 and rec.errors[X86_64]["openat"] == 1
    assert counts["restart_syscall"] == 1
    assert counts["rt_sigreturn"] == 1
    assert counts["getpid"] == 1  # the [pid N] form
    assert counts["exit"] == 1 and counts["exit_group"] == 1  # the 32-bit one is counted on x86
    # syscall_0x1c5 is number 453: resolved when this libseccomp knows it, dropped otherwise.
    known = syscalls.resolve_number(0x1C5, X86_64)
    if known is not None:
        assert counts[known] == 1
    dropped = " ".join(w for w in rec.warnings if w.startswith("dropped"))
    assert "syscall_0x3e7" in dropped
    assert ("syscall_0x1c5" in dropped) is (known is None)
    # The 32-bit process's call is an x86 syscall, not an x86_64 one.
    assert rec.counts["SCMP_ARCH_X86"] == {"mmap2": 1, "exit_group": 1}
    assert "mmap2" not in counts
    # Signals, exits, kills, strace's own lines and the program's output are not syscalls.
    names = rec.names()
    assert not {n for n in names if n.startswith(("SIG", "syscall_", "strace", "app"))}
    assert rec.signals == {"SIGALRM": 1, "SIGCHLD": 1}
    assert rec.killed == ["pid 3103 killed by SIGKILL"]
    assert rec.processes == {3101, 3102, 3103, 3104}
    assert rec.commands[0] == ["app", "--serve"]
    assert any("1 line(s) of the log were not strace output" in w for w in rec.warnings)
    assert all(syscalls.resolve(n, a) is not None for a, c in rec.counts.items() for n in c)


def test_raw_log_becomes_a_valid_two_arch_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "app.strace"
    log.write_text(RAW_LOG)
    code, out, err = run_main(
        ["record", "--from-log", str(log), "--arch", "x86_64", "--namespace", "shop", "--runtime", "none"],
        capsys,
    )
    assert code == 0, err
    resource = yaml.safe_load(out)
    assert resource["metadata"] == {
        "name": "recorded-app",
        "namespace": "shop",
        "annotations": resource["metadata"]["annotations"],
    }
    spec = resource["spec"]
    assert spec["architectures"] == [X86_64, "SCMP_ARCH_X86"]
    assert {"restart_syscall", "mmap2", "clone3", "futex"} <= allowed_names(spec)
    # clone3 was recorded, so it is allowed and not in the ENOSYS rule.
    assert all("clone3" not in r["names"] for r in spec["syscalls"] if r["action"] != "SCMP_ACT_ALLOW")
    assert "syscall_0x3e7" in err


def test_log_mode_and_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "app.strace"
    log.write_text(RAW_LOG)
    code, out, err = run_main(
        ["record", "--from-log", str(log), "--arch", "x86_64", "--mode", "log", "--format", "json"], capsys
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["defaultAction"] == "SCMP_ACT_LOG"
    assert "defaultErrnoRet" not in doc
    assert [r["action"] for r in doc["syscalls"]] == ["SCMP_ACT_ALLOW"]  # nothing denied in log mode
    assert out == render_mapping(doc).content.decode()  # the node file's normal form


def test_never_an_empty_allow_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "empty.strace"
    log.write_text(
        "4001  --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER} ---\n4001  +++ killed by SIGTERM +++\n"
    )
    code, out, err = run_main(["record", "--from-log", str(log), "--runtime", "none"], capsys)
    assert code == 2
    assert out == ""
    assert "empty allow list" in err


def test_summary_without_syscalls_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "c.txt"
    summary.write_text(
        "% time     seconds  usecs/call     calls    errors syscall\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.000000           0         0           total\n"
    )
    code, _, err = run_main(["generate", "--from-strace-summary", str(summary)], capsys)
    assert code == 2 and "empty allow list" in err


def test_summary_with_a_32_bit_section_and_bogus_names() -> None:
    text = (
        "% time     seconds  usecs/call     calls    errors syscall\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        " 60.00    0.000060          20         3           read\n"
        " 40.00    0.000040          40         1         1 procexit\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.000100          25         4         1 total\n"
        "System call usage summary for 32 bit mode:\n"
        "% time     seconds  usecs/call     calls    errors syscall\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.000010          10         1           mmap2\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.000010          10         1           total\n"
    )
    assert record.is_summary(text)
    rec = record.parse_strace_summary(text, X86_64)
    assert rec.counts == {X86_64: {"read": 3}, "SCMP_ARCH_X86": {"mmap2": 1}}
    assert any("procexit" in w for w in rec.warnings)  # a sysdig event name, not a syscall (case 002)


def test_client_commands_are_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert record.client_warning(["/usr/bin/docker", "run", "hello-world"])
    assert record.client_warning(["sudo", "kubectl", "exec", "pod"])
    assert record.client_warning(["/bin/busybox", "ls"]) is None
    log = tmp_path / "docker.strace"
    log.write_text(
        '5001  execve("/usr/bin/docker", ["docker", "run", "hello-world"], 0x7ffe0 /* 20 vars */) = 0\n'
        "5001  read(3, NULL, 0)    = 0\n"
    )
    code, _, err = run_main(["record", "--from-log", str(log), "--runtime", "none"], capsys)
    assert code == 0
    assert "docker is a container client" in err


def test_merge_unions_recordings_and_sums_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "a.strace"
    first.write_text("1  read(0, NULL, 0) = 0\n1  read(0, NULL, 0) = 0\n1  getpid() = 1\n")
    second = tmp_path / "b.strace"
    second.write_text("2  read(0, NULL, 0) = 0\n2  uname(NULL) = -1 EFAULT (Bad address)\n")
    code, out, err = run_main(
        ["record", "--from-log", str(first), "--arch", "x86_64", "-o", str(tmp_path / "a.yaml")], capsys
    )
    assert code == 0, err
    code, out, err = run_main(
        ["record", "--arch", "x86_64", "--merge", str(tmp_path / "a.yaml"), str(second)], capsys
    )
    assert code == 0, err
    resource = yaml.safe_load(out)
    counts = json.loads(resource["metadata"]["annotations"][record.COUNTS_ANNOTATION])
    assert counts == {X86_64: {"getpid": 1, "read": 3, "uname": 1}}
    assert {"getpid", "read", "uname"} <= allowed_names(resource["spec"])


def test_template_output_round_trips_through_yaml() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": [X86_64],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
    }
    text = record.render_resource(
        spec,
        name="on",  # a YAML 1.1 boolean word when unquoted
        namespace="ns-1",
        annotations={"a.example/x": 'quote " colon: # hash\nnewline', "b": "yes"},
    )
    loaded = yaml.safe_load(text)
    assert loaded["metadata"] == {
        "name": "on",
        "namespace": "ns-1",
        "annotations": {"a.example/x": 'quote " colon: # hash\nnewline', "b": "yes"},
    }
    assert loaded["spec"] == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": [X86_64],
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read", "write"]}],
    }


# --------------------------------------------------------------------------- real recording

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


@needs_strace
def test_record_runs_strace_and_keeps_stdout_for_the_profile(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seccomp_operator.record",
            "record",
            "--name",
            "echo",
            "--",
            "/bin/busybox",
            "echo",
            "hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resource = yaml.safe_load(result.stdout)  # the command's "hi" went to stderr, not into the YAML
    assert "hi" in result.stderr.splitlines()
    info = json.loads(resource["metadata"]["annotations"][record.RECORDED_ANNOTATION])
    assert info["command"] == ["/bin/busybox", "echo", "hi"]
    assert info["strace"] == record.strace_version()
    assert info["architecture"] == syscalls.native_arch()
    assert info["date"].endswith("Z")
    counts = json.loads(resource["metadata"]["annotations"][record.COUNTS_ANNOTATION])
    assert counts[syscalls.native_arch()]["execve"] == 1
    assert {"execve", "write", "exit_group"} <= allowed_names(resource["spec"])


@pytest.mark.containerd
@needs_strace
async def test_recorded_profile_installed_by_the_agent_runs_ls_and_denies_mkdir(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    if syscalls.native_arch() != X86_64:
        pytest.skip("the runtime start-up list is x86_64 names")
    out = tmp_path / "ls.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seccomp_operator.record",
            "record",
            "--name",
            "busybox-ls",
            "--namespace",
            "team-a",
            "-o",
            str(out),
            "--",
            "/bin/busybox",
            "ls",
            "/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body = yaml.safe_load(out.read_text())
    assert "mkdir" not in allowed_names(body["spec"]) and "mkdirat" not in allowed_names(body["spec"])

    kubelet = tmp_path / "kubelet"
    kubelet.mkdir()
    agent = Agent(AgentConfig(node_name="node-1", kubelet_root=str(kubelet)), api=None)
    agent.observe(None, body)
    await agent.step()
    entry = agent.report.entries["team-a/busybox-ls"]
    assert entry.state == "Installed", entry
    path = Path(profile_path(str(kubelet), "team-a", "busybox-ls"))
    assert json.loads(path.read_text())["defaultErrnoRet"] == errno.EPERM

    listed = containerd.run(path, ["/bin/busybox", "ls", "/"], busybox_root)
    assert listed.ok, listed.describe()
    assert {"bin", "tmp", "proc"} <= set(listed.stdout.split()), listed.describe()

    denied = containerd.run(path, ["/bin/busybox", "mkdir", "/tmp/x"], busybox_root)
    assert denied.rc != 0, denied.describe()
    assert "can't create directory '/tmp/x': Operation not permitted" in denied.stderr, denied.describe()
    assert not (busybox_root / "tmp" / "x").exists()
