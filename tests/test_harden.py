"""``seccomp-operator harden``: kernel seccomp audit records turn a log-mode profile into an enforcing one.

The audit lines below were written for this test in the formats the kernel and auditd produce
(``kernel/auditsc.c`` ``audit_seccomp``; auditd's raw log with enriched fields after a GS
byte, ``ausearch -i``'s interpreted form, and the kernel log's ``audit: type=1326`` form).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator import harden, syscalls
from seccomp_operator.render import render_mapping

GS = "\x1d"

#: Records of one workload run under a ``SCMP_ACT_LOG`` default, plus noise.
AUDIT_LOG = "\n".join(
    [
        # auditd raw log, enriched: numbers first, then the interpreted names after a GS byte.
        "type=SECCOMP msg=audit(1732871234.512:96): auid=4294967295 uid=101 gid=101 ses=4294967295 "
        'subj=unconfined pid=48211 comm="nginx" exe="/usr/sbin/nginx" sig=0 arch=c000003e syscall=41 '
        f'compat=0 ip=0x7f61e0b3c1a7 code=0x7ffc0000{GS}AUID="unset" UID="nginx" GID="nginx" '
        "ARCH=x86_64 SYSCALL=socket",
        "type=SECCOMP msg=audit(1732871234.513:97): auid=4294967295 uid=101 gid=101 ses=4294967295 "
        'subj=unconfined pid=48211 comm="nginx" exe="/usr/sbin/nginx" sig=0 arch=c000003e syscall=49 '
        "compat=0 ip=0x7f61e0b3c2b1 code=0x7ffc0000",
        # a SYSCALL record of the same event and an AVC: not seccomp, ignored
        "type=SYSCALL msg=audit(1732871234.513:97): arch=c000003e syscall=49 success=yes exit=0 a0=6 "
        'items=0 ppid=48190 pid=48211 comm="nginx" exe="/usr/sbin/nginx"',
        'type=AVC msg=audit(1732871234.600:98): avc:  denied  { read } for  pid=48211 comm="nginx"',
        # ausearch -i: already interpreted
        "type=SECCOMP msg=audit(11/29/2024 09:07:14.514:99) : auid=unset uid=nginx gid=nginx ses=unset "
        "subj=unconfined pid=48211 comm=nginx exe=/usr/sbin/nginx sig=0 arch=x86_64 syscall=listen "
        "compat=0 ip=0x7f61e0b3c3c5 code=log",
        # the kernel log (dmesg / journalctl -k) when auditd is not running
        "[ 8123.402117] audit: type=1326 audit(1732871234.530:100): auid=4294967295 uid=101 gid=101 "
        'ses=4294967295 pid=48211 comm="nginx" exe="/usr/sbin/nginx" sig=0 arch=c000003e syscall=288 '
        "compat=0 ip=0x7f61e0b3c4d2 code=0x7ffc0000",
        "Nov 29 09:07:14 node-3 kernel: audit: type=1326 audit(1732871234.531:101): auid=4294967295 "
        'uid=101 gid=101 ses=4294967295 pid=48212 comm="nginx" exe="/usr/sbin/nginx" sig=0 '
        "arch=c000003e syscall=232 compat=0 ip=0x7f61e0b3c5e3 code=0x7ffc0000",
        # the same syscall twice: one allow entry
        "[ 8123.402300] audit: type=1326 audit(1732871234.532:102): auid=4294967295 uid=101 gid=101 "
        'ses=4294967295 pid=48212 comm="nginx" exe="/usr/sbin/nginx" sig=0 arch=c000003e syscall=232 '
        "compat=0 ip=0x7f61e0b3c5e3 code=0x7ffc0000",
        # the runtime's init, before exec: part of the container's start-up
        "[ 8123.390001] audit: type=1326 audit(1732871234.401:95): auid=4294967295 uid=0 gid=0 "
        'ses=4294967295 pid=48211 comm="runc:[2:INIT]" exe="/" sig=0 arch=c000003e syscall=435 '
        "compat=0 ip=0x4082ae code=0x7ffc0000",
        # an architecture nobody knows: skipped with a warning
        "[ 8123.402400] audit: type=1326 audit(1732871234.533:103): auid=4294967295 uid=101 gid=101 "
        'ses=4294967295 pid=48213 comm="odd" exe="/odd" sig=0 arch=1234abcd syscall=3 compat=0 '
        "ip=0x1 code=0x7ffc0000",
        "random unrelated line",
    ]
)

LOG_MODE_PROFILE = """\
apiVersion: seccomp-operator.dev/v1alpha1
kind: SeccompProfile
metadata:
  name: web
  namespace: shop
  resourceVersion: "4711"
spec:
  defaultAction: SCMP_ACT_LOG
  architectures:
  - SCMP_ARCH_X86_64
  syscalls:
  - action: SCMP_ACT_ALLOW
    names: [read, write, close, execve, exit_group]
  - action: SCMP_ACT_ERRNO
    errnoRet: 1
    names: [ptrace]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def allowed(spec: dict[str, Any]) -> set[str]:
    return {n for r in spec["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}


def test_parse_audit_formats() -> None:
    scan = harden.parse_audit(AUDIT_LOG)
    assert scan.records == 8  # the type=SECCOMP and type=1326 lines
    names = scan.names()
    assert names == {
        "socket": 1,
        "bind": 1,
        "listen": 1,
        "accept4": 1,
        "epoll_wait": 2,
        "clone3": 1,
    }
    assert {e.action for e in scan.events} == {"log"}
    assert {e.comm for e in scan.events} == {"nginx", "runc:[2:INIT]"}
    assert scan.warnings == ["skipped 1 record(s): unknown audit arch 1234abcd"]


def test_audit_arches_and_x32() -> None:
    lines = "\n".join(
        [
            'audit: type=1326 audit(1.1:1): pid=1 comm="a" sig=0 arch=40000003 syscall=192 code=0x7ffc0000',
            'audit: type=1326 audit(1.1:2): pid=1 comm="a" sig=0 arch=c00000b7 syscall=56 code=0x7ffc0000',
            'audit: type=1326 audit(1.1:3): pid=1 comm="a" sig=0 arch=c000003e syscall=1073741825 '
            "code=0x00050026",
            'audit: type=1326 audit(1.1:4): pid=1 comm="a" sig=31 arch=c000003e syscall=101 code=0x80000000',
        ]
    )
    scan = harden.parse_audit(lines)
    got = {(e.arch, e.name, e.action) for e in scan.events}
    assert got == {
        ("SCMP_ARCH_X86", "mmap2", "log"),
        ("SCMP_ARCH_AARCH64", "openat", "log"),
        ("SCMP_ARCH_X32", syscalls.resolve_number(0x40000001, "SCMP_ARCH_X32"), "errno"),
        ("SCMP_ARCH_X86_64", "ptrace", "kill"),
    }
    only_arm = harden.parse_audit(lines, arches=["SCMP_ARCH_AARCH64"])
    assert [e.name for e in only_arm.events] == ["openat"]


def test_harden_turns_each_logged_syscall_into_an_allow_rule_and_denies_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = write(tmp_path, "web.yaml", LOG_MODE_PROFILE)
    audit = write(tmp_path, "audit.log", AUDIT_LOG)
    code = harden.main([str(profile), "--from-audit", str(audit)])
    out, err = capsys.readouterr()
    assert code == 0, err
    resource = yaml.safe_load(out)
    spec = resource["spec"]
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO"
    assert spec["defaultErrnoRet"] == 38
    logged = {"socket", "bind", "listen", "accept4", "epoll_wait", "clone3"}
    assert allowed(spec) == {"read", "write", "close", "execve", "exit_group"} | logged
    assert spec["syscalls"][0]["names"] == sorted(spec["syscalls"][0]["names"])  # added to the first rule
    assert spec["syscalls"][1] == {"action": "SCMP_ACT_ERRNO", "errnoRet": 1, "names": ["ptrace"]}
    assert len(spec["syscalls"]) == 2  # ENOSYS default: no extra fallback rule
    meta = resource["metadata"]
    assert meta["name"] == "web" and meta["namespace"] == "shop"
    assert "resourceVersion" not in meta
    note = json.loads(meta["annotations"][harden.HARDENED_ANNOTATION])
    assert note["added"] == sorted(logged) and note["defaultBefore"] == "SCMP_ACT_LOG"
    assert "unknown audit arch 1234abcd" in err
    render_mapping(spec)  # valid: render raises on errors


def test_explicit_denies_stay_and_profile_errno_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = write(
        tmp_path,
        "p.json",
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_LOG",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["bind"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                ],
            }
        ),
    )
    audit = write(tmp_path, "audit.log", AUDIT_LOG)
    code = harden.main([str(profile), "--from-audit", str(audit), "--errno", "EPERM"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)  # node JSON in, node JSON out
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO" and doc["defaultErrnoRet"] == 1
    assert allowed(doc) == {"read", "socket", "listen", "accept4", "epoll_wait", "clone3"}
    assert "bind: denied on purpose by syscalls[1]" in err
    # EPERM default: openat2 (not logged, not allowed) is denied with ENOSYS so callers fall back.
    assert {"names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in doc["syscalls"]


def test_comm_filter(tmp_path: Path) -> None:
    scan = harden.parse_audit(AUDIT_LOG, comms=["runc:[2:INIT]"])
    assert [e.name for e in scan.events] == ["clone3"]
    result = harden.harden_spec({"defaultAction": "SCMP_ACT_LOG"}, scan)
    assert result.spec == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ALLOW"}],
    }


def test_allow_default_and_empty_audit_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    allow = write(tmp_path, "allow.json", json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    audit = write(tmp_path, "audit.log", AUDIT_LOG)
    assert harden.main([str(allow), "--from-audit", str(audit)]) == 2
    assert "kernel logs nothing for allowed syscalls" in capsys.readouterr().err

    log_mode = write(tmp_path, "log.yaml", LOG_MODE_PROFILE)
    empty = write(tmp_path, "empty.log", "type=SYSCALL msg=audit(1.0:1): arch=c000003e syscall=0\n")
    assert harden.main([str(log_mode), "--from-audit", str(empty)]) == 2
    assert "no usable seccomp audit record" in capsys.readouterr().err
