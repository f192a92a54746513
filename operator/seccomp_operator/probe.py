"""``seccomp-operator probe``: which syscalls does the seccomp filter of this process block?

The idea is amicontained's (github.com/genuinetools/amicontained: read the seccomp mode,
then try every syscall and call those failing with EPERM "blocked"), done so that the
probe cannot change the system and says when it cannot tell:

* The mode comes from ``/proc/self/status`` (``Seccomp:`` 0 disabled, 1 strict,
  2 filtering; ``Seccomp_filters:`` the number of stacked filters, Linux >= 5.9;
  ``proc(5)``).
* Every syscall libseccomp knows for the running architecture is made once, each in its
  own short-lived forked child, through libc's ``syscall()`` (``ctypes``), with arguments
  chosen to fail (fd -1, pointers to address -1, invalid flags or sizes, keys that do not
  exist).  The child reports through its exit status only (0 = the call returned >= 0,
  1..199 = the errno), so nothing but ``fork``/``exit_group``/``wait4`` is needed to
  report; at most ``jobs`` children run at once.  A child still running after 50 ms whose
  ``/proc/<pid>/syscall`` shows it asleep inside the probed call (``pause``) is killed at
  once, any other after ``timeout`` seconds: a call that does not return ran, so it was
  allowed.  Allowed calls may leave kernel log lines (``rt_sigreturn``'s "bad frame",
  ``remap_file_pages``' deprecation notice; under ``SCMP_ACT_LOG`` one audit record each).
* Calls that act whatever their arguments are handled one by one (:data:`SPECIAL`):
  ``exit``/``exit_group`` exit with a marker status, ``fork`` reaps its grandchild,
  ``vfork`` goes through a machine-code stub on x86_64 whose child exits without touching
  the shared stack, ``vhangup`` runs in a new session (no controlling terminal to hang
  up), the SysV ``*get`` calls use a key that does not exist and no ``IPC_CREAT``,
  ``kill``/``tkill``/``tgkill`` name a pid above the kernel's limit and an invalid signal,
  ``init_module`` gets length 0 (refused as too short), ``reboot``/``kexec_*``/
  ``delete_module``/``swap*``/``acct`` get bad magic numbers, flags or pointers: when
  allowed they fail with EINVAL/EFAULT/ENOEXEC, never act.
* Verdicts (:class:`Verdict`), only when the mode is "filtering" (otherwise everything ran):
  a signal SIGSYS (``SCMP_ACT_KILL*``/``TRAP``), EPERM, or an errno >= 200 (only a filter
  returns those) is *blocked*; EPERM from a call whose kernel code checks a capability
  before looking at the arguments (:data:`CAPABILITY_GATED`) is *ambiguous* when this
  process lacks that capability (or runs in a user namespace); ENOSYS from the calls of
  :data:`KERNEL_ENOSYS` is *ambiguous*; other ENOSYS is *blocked* when ``/proc/kallsyms``
  shows the kernel implements the call (a ``T`` symbol ``__x64_sys_<name>``; a ``W``
  symbol is a ``COND_SYSCALL`` stub), *absent* when it does not, *ambiguous* when kallsyms
  is unreadable; any other errno, a return value >= 0, another fatal signal (``rt_sigreturn``
  dies of SIGSEGV) or no return within the timeout means *allowed*.  A filter that returns
  another errno (``errnoRet: 13``) cannot be told from the kernel's own errors: such calls
  look allowed, unless ``--expect`` names the errno (see :func:`compare`).  Rules with
  argument conditions are judged for the probe's arguments only (``clone`` with flags -1).
* Only the native architecture is probed: the 32-bit entry points (``int 0x80``) and x32
  are not.

``--expect FILE`` renders a SeccompProfile resource (or node JSON) with the core renderer and
computes, for every probed name, what the profile does on the native architecture
(:func:`expectations`), then lists every difference (:func:`compare`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import enum
import errno
import json
import mmap
import os
import platform
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from . import syscalls

#: ``/proc/self/status`` ``Seccomp:`` values (``proc(5)``).
MODES: Final[dict[int, str]] = {0: "disabled", 1: "strict", 2: "filtering"}

#: Status a probe child exits with when ``exit``/``exit_group`` ran (its argument).
EXIT_MARKER: Final = 200
#: The child failed before making the call (Python exception, ``setsid`` refused).
CHILD_FAILED: Final = 201
#: The call returned an errno >= 200 (only a filter does that: kernel errnos end at 133).
HIGH_ERRNO: Final = 202
#: The call needs the x86_64 machine-code stub and it could not be set up.
STUB_UNAVAILABLE: Final = 203
#: Highest errno passed through the exit status as itself.
_MAX_PASSED_ERRNO: Final = 199

_M1: Final = -1  # as a C long: fd -1, address 0xfff...f, size/flags all bits set

#: Linux capability numbers (``include/uapi/linux/capability.h``) used in :data:`CAPABILITY_GATED`.
CAPABILITIES: Final[dict[str, int]] = {
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_SETGID": 6,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_SYSLOG": 34,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
}

#: Syscalls whose kernel implementation checks a capability before it looks at the probe's
#: arguments, so that without that capability they fail with EPERM whether the filter allows
#: them or not (kernel sources: ``kernel/reboot.c``, ``kernel/kexec*.c``, ``kernel/module``,
#: ``mm/swapfile.c``, ``kernel/acct.c``, ``kernel/sys.c`` (sethostname), ``kernel/groups.c``
#: (setgroups), ``fs/namespace.c`` (``may_mount``), ``fs/fsopen.c``, ``fs/open.c`` (vhangup),
#: ``kernel/printk`` (syslog), ``fs/notify/fanotify``, ``security/landlock/syscalls.c``;
#: older kernels also ``fs/fhandle.c``, ``fs/dcookies.c`` and ``kernel/bpf/syscall.c``).
#: Checked on Linux 6.18 by running the probe as root with an empty capability bounding set
#: (``setpriv --bounding-set=-all``): every EPERM then came from a call in this table.
#: With any one of the listed capabilities the call gets past the check.
CAPABILITY_GATED: Final[dict[str, tuple[str, ...]]] = {
    "reboot": ("CAP_SYS_BOOT",),
    "kexec_load": ("CAP_SYS_BOOT",),
    "kexec_file_load": ("CAP_SYS_BOOT",),
    "init_module": ("CAP_SYS_MODULE",),
    "finit_module": ("CAP_SYS_MODULE",),
    "delete_module": ("CAP_SYS_MODULE",),
    "swapoff": ("CAP_SYS_ADMIN",),
    "acct": ("CAP_SYS_PACCT",),
    "sethostname": ("CAP_SYS_ADMIN",),
    "setdomainname": ("CAP_SYS_ADMIN",),
    "pivot_root": ("CAP_SYS_ADMIN",),
    "move_mount": ("CAP_SYS_ADMIN",),
    "fsmount": ("CAP_SYS_ADMIN",),
    "fspick": ("CAP_SYS_ADMIN",),
    "fsopen": ("CAP_SYS_ADMIN",),
    "vhangup": ("CAP_SYS_TTY_CONFIG",),
    "syslog": ("CAP_SYSLOG", "CAP_SYS_ADMIN"),
    "fanotify_init": ("CAP_SYS_ADMIN",),
    "open_by_handle_at": ("CAP_DAC_READ_SEARCH",),
    "lookup_dcookie": ("CAP_SYS_ADMIN",),
    "bpf": ("CAP_BPF", "CAP_SYS_ADMIN"),
    "setgroups": ("CAP_SETGID",),
    # only without no_new_privs (NoNewPrivs: 1 in /proc/self/status lifts the check)
    "landlock_restrict_self": ("CAP_SYS_ADMIN",),
}

#: Calls the kernel answers with ENOSYS although ``/proc/kallsyms`` has a text symbol for
#: them (measured on Linux 6.18 without a filter): the 32-bit TLS calls on x86_64, and
#: ``iopl``/``ioperm`` without ``CONFIG_X86_IOPL_IOPERM``.  ENOSYS from them is ambiguous.
KERNEL_ENOSYS: Final[dict[str, frozenset[str]]] = {
    "SCMP_ARCH_X86_64": frozenset({"set_thread_area", "get_thread_area", "iopl", "ioperm"}),
}

#: Key for ``msgget``/``semget``/``shmget``: without ``IPC_CREAT`` nothing is created, and a
#: key nobody uses gives ENOENT.
_IPC_KEY: Final = 0x5ECC0B3E
#: A pid above ``PID_MAX_LIMIT`` (4 194 304) and a signal number no kernel accepts.
_NO_PID: Final = 0x3FFFFFFF
_NO_SIGNAL: Final = 0x7FFFFFFF

#: Argument overrides (everything else gets six times -1).  Each comment says why -1 is
#: not good enough, and what the call does with these arguments when it is allowed.
ARGUMENTS: Final[dict[str, tuple[int, ...]]] = {
    # -1 would match all processes / a real pid: a pid that cannot exist, a bad signal.
    "kill": (_NO_PID, _NO_SIGNAL),
    "tkill": (_NO_PID, _NO_SIGNAL),
    "tgkill": (_NO_PID, _NO_PID, _NO_SIGNAL),
    "rt_sigqueueinfo": (_NO_PID, _NO_SIGNAL, _M1),
    "rt_tgsigqueueinfo": (_NO_PID, _NO_PID, _NO_SIGNAL, _M1),
    # key -1 with IPC_CREAT in flags -1 would create a queue: an unused key, no flags.
    "msgget": (_IPC_KEY, 0),
    "semget": (_IPC_KEY, 0, 0),
    "shmget": (_IPC_KEY, 0, 0),
    # length 0 is shorter than an ELF header: ENOEXEC after the capability check.
    "init_module": (0, 0, 0),
    # op -1 is "unknown futex op" = ENOSYS; FUTEX_WAKE on a misaligned address: EINVAL.
    "futex": (_M1, 1, 1, 0, 0, 0),
    # func -1 is ENOSYS; func 0 (read the LDT) into address -1 with count 0 returns 0.
    "modify_ldt": (0, _M1, 0),
    # cmd -1 has LOCK_MAND set, which the kernel ignores with a warning (returns 0): LOCK_SH.
    "flock": (_M1, 1),
    # exit code EXIT_MARKER tells "it ran" from "it returned an errno".
    "exit": (EXIT_MARKER,),
    "exit_group": (EXIT_MARKER,),
}

#: Calls needing more than arguments (see the module docstring).
SPECIAL: Final[dict[str, str]] = {
    "vfork": "stub",
    "fork": "fork",
    "vhangup": "setsid",
}

#: ``/proc/kallsyms`` prefix of syscall entry points per OCI architecture (arch syscall
#: wrappers, ``arch/*/include/asm/syscall_wrapper.h``); others use plain ``sys_``.
_KALLSYMS_PREFIX: Final[dict[str, str]] = {
    "SCMP_ARCH_X86_64": "__x64_sys_",
    "SCMP_ARCH_AARCH64": "__arm64_sys_",
    "SCMP_ARCH_S390X": "__s390x_sys_",
    "SCMP_ARCH_RISCV64": "__riscv_sys_",
}
#: Syscall names whose kernel entry point has another name.
_KERNEL_NAMES: Final[dict[str, str]] = {
    "uname": "newuname",
    "stat": "newstat",
    "lstat": "newlstat",
    "fstat": "newfstat",
    "umount2": "umount",
    "sendfile": "sendfile64",
}

#: First syscall number of the native table, for architectures where it is not 0.
_TABLE_BASE: Final[dict[str, int]] = {
    "SCMP_ARCH_MIPS": 4000,
    "SCMP_ARCH_MIPSEL": 4000,
    "SCMP_ARCH_MIPS64": 5000,
    "SCMP_ARCH_MIPSEL64": 5000,
    "SCMP_ARCH_MIPS64N32": 6000,
    "SCMP_ARCH_MIPSEL64N32": 6000,
    "SCMP_ARCH_X32": 0x40000000,
}

#: x86_64 machine code: ``vfork``; in the child (rax == 0) ``exit(0)`` at once, without a
#: single stack access (parent and child share the stack until the child exits); in the
#: parent return rax (the child's pid, or ``-errno``).
_VFORK_STUB_X86_64: Final = bytes.fromhex(
    "b83a000000"  # mov eax, 58 (vfork)
    "0f05"  # syscall
    "4885c0"  # test rax, rax
    "7509"  # jnz ret
    "b83c000000"  # mov eax, 60 (exit)
    "31ff"  # xor edi, edi
    "0f05"  # syscall
    "c3"  # ret
)


class Verdict(enum.StrEnum):
    """What one syscall's probe says about the filter."""

    ALLOWED = "allowed"
    BLOCKED = "blocked"
    AMBIGUOUS = "ambiguous"
    #: ENOSYS and the kernel does not implement the call: the filter's answer is unknowable.
    ABSENT = "absent"
    #: Not probed (for example ``vfork`` off x86_64).
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class SeccompStatus:
    """The seccomp fields of ``/proc/<pid>/status``.

    Attributes:
        mode: ``disabled``, ``strict``, ``filtering``, or ``unknown`` (no ``Seccomp:`` line:
            a kernel without ``CONFIG_SECCOMP``).
        filters: ``Seccomp_filters:`` (Linux >= 5.9), None when absent.
        cap_eff: the ``CapEff:`` bit mask (0 when absent).
        no_new_privs: ``NoNewPrivs: 1``.
    """

    mode: str
    filters: int | None
    cap_eff: int
    no_new_privs: bool = False


def read_status(path: str | Path = "/proc/self/status") -> SeccompStatus:
    """Parse the seccomp mode, filter count and effective capabilities from a status file.

    Raises:
        OSError: the file cannot be read.
    """
    fields: dict[str, str] = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    raw = fields.get("Seccomp")
    mode = MODES.get(int(raw), "unknown") if raw is not None and raw.isdigit() else "unknown"
    filters_raw = fields.get("Seccomp_filters")
    filters = int(filters_raw) if filters_raw is not None and filters_raw.isdigit() else None
    try:
        cap_eff = int(fields.get("CapEff", "0"), 16)
    except ValueError:
        cap_eff = 0
    return SeccompStatus(mode, filters, cap_eff, fields.get("NoNewPrivs") == "1")


def in_initial_user_namespace(path: str | Path = "/proc/self/uid_map") -> bool:
    """True when ``uid_map`` is the identity map of all 2^32-1 ids (the initial user namespace).

    In another user namespace capabilities shown in ``CapEff`` are not capabilities over the
    host (``user_namespaces(7)``), so capability-gated EPERMs stay ambiguous there.  An
    unreadable map counts as "not initial".
    """
    try:
        fields = Path(path).read_text().split()
    except OSError:
        return False
    return fields == ["0", "0", "4294967295"]


def kernel_syscalls(arch: str, path: str | Path = "/proc/kallsyms") -> frozenset[str] | None:
    """Names of the syscalls the running kernel implements, from ``/proc/kallsyms``; None if unknown.

    A syscall is implemented when a text symbol (type ``T``/``t``) ``<prefix><name>`` exists;
    ``W`` symbols are the weak ``COND_SYSCALL`` stubs that return ENOSYS.  The kernel names of
    :data:`_KERNEL_NAMES` are mapped back.  None when the file cannot be read or holds no
    syscall symbol of this architecture (``kptr_restrict`` hides addresses, not names).
    """
    prefix = _KALLSYMS_PREFIX.get(arch, "sys_")
    back = {kernel: name for name, kernel in _KERNEL_NAMES.items()}
    names: set[str] = set()
    seen = False
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                parts = raw.decode("ascii", "replace").split()
                if len(parts) < 3 or not parts[2].startswith(prefix):
                    continue
                seen = True
                if parts[1] in ("T", "t"):
                    name = parts[2][len(prefix) :]
                    names.add(back.get(name, name))
    except OSError:
        return None
    return frozenset(names) if seen else None


def native_syscalls(arch: str) -> list[tuple[str, int]]:
    """``(name, number)`` of every syscall libseccomp knows on ``arch``, by number.

    Scans 1024 numbers from the table's base (:data:`_TABLE_BASE`, else 0).
    """
    base = _TABLE_BASE.get(arch, 0)
    found: list[tuple[str, int]] = []
    for number in range(base, base + 1024):
        name = syscalls.resolve_number(number, arch)
        if name is not None:
            found.append((name, number))
    return found


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one syscall did in its child.

    Attributes:
        name, number: the syscall on the probed architecture.
        status: the child's exit status (None when it died of a signal or was killed).
        signal: the signal that ended the child (None when it exited).
        timed_out: the child was killed because its call did not return (seen asleep inside
            it, or still running after the timeout).
        verdict: see :class:`Verdict`.
        reason: one sentence explaining the verdict.
    """

    name: str
    number: int
    status: int | None
    signal: int | None
    timed_out: bool
    verdict: Verdict
    reason: str

    @property
    def errno(self) -> int | None:
        """The errno the call failed with (None when it returned, ran or was not made)."""
        if self.status is not None and 1 <= self.status <= _MAX_PASSED_ERRNO:
            return self.status
        return None

    @property
    def result(self) -> str:
        """Short text: ``EPERM``, ``ok``, ``SIGSYS``, ``timeout``, ``exited``, ``errno>=200``."""
        if self.timed_out:
            return "timeout"
        if self.signal is not None:
            return signal_name(self.signal)
        if self.errno is not None:
            return errno_name(self.errno)
        return {
            0: "ok",
            EXIT_MARKER: "exited",
            HIGH_ERRNO: "errno>=200",
            CHILD_FAILED: "not made",
            STUB_UNAVAILABLE: "not made",
        }.get(self.status or 0, f"status {self.status}")

    def as_dict(self) -> dict[str, Any]:
        """JSON form: name, number, verdict, result, errno (number or null), signal, reason."""
        return {
            "name": self.name,
            "number": self.number,
            "verdict": str(self.verdict),
            "result": self.result,
            "errno": self.errno,
            "signal": signal_name(self.signal) if self.signal is not None else None,
            "reason": self.reason,
        }


def errno_name(number: int) -> str:
    """``EPERM`` for 1; ``errno 150`` for numbers without a symbolic name."""
    return errno.errorcode.get(number, f"errno {number}")


def signal_name(number: int) -> str:
    """``SIGSYS`` for 31; ``signal 99`` for numbers without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass
class ProbeReport:
    """Everything one probe found.

    Attributes:
        status: the seccomp mode of the probing process.
        arch: the OCI name of the probed (native) architecture.
        outcomes: one per syscall, by number.
        seconds: wall-clock duration of the probe.
        kernel_known: whether ``/proc/kallsyms`` told which syscalls the kernel implements.
    """

    status: SeccompStatus
    arch: str
    outcomes: list[Outcome]
    seconds: float
    kernel_known: bool

    def with_verdict(self, verdict: Verdict) -> list[Outcome]:
        """The outcomes with ``verdict``, by name."""
        return sorted((o for o in self.outcomes if o.verdict is verdict), key=lambda o: o.name)

    @property
    def blocked(self) -> list[str]:
        """Names of blocked syscalls, sorted."""
        return [o.name for o in self.with_verdict(Verdict.BLOCKED)]

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``--output json``)."""
        return {
            "seccomp": self.status.mode,
            "filters": self.status.filters,
            "architecture": self.arch,
            "probed": len(self.outcomes),
            "seconds": round(self.seconds, 3),
            "kernelSyscallsKnown": self.kernel_known,
            "blocked": self.blocked,
            "ambiguous": [o.name for o in self.with_verdict(Verdict.AMBIGUOUS)],
            "syscalls": [o.as_dict() for o in self.outcomes],
        }

    def text(self, width: int = 76) -> str:
        """The amicontained-style summary: mode, then ``Blocked Syscalls (N):`` in upper case."""
        lines = [f"Seccomp: {self.status.mode}"]
        if self.status.filters is not None:
            lines.append(f"Seccomp filters: {self.status.filters}")
        blocked = self.with_verdict(Verdict.BLOCKED)
        lines.append(f"Blocked Syscalls ({len(blocked)}):")
        lines.extend(_wrap([o.name.upper() for o in blocked], width))
        ambiguous = self.with_verdict(Verdict.AMBIGUOUS)
        if ambiguous:
            lines.append(f"Ambiguous ({len(ambiguous)}), not counted as blocked:")
            lines.extend(f"    {o.name.upper()}: {o.reason}" for o in ambiguous)
        skipped = self.with_verdict(Verdict.SKIPPED)
        if skipped:
            lines.append(f"Not probed ({len(skipped)}):")
            lines.extend(f"    {o.name.upper()}: {o.reason}" for o in skipped)
        absent = self.with_verdict(Verdict.ABSENT)
        lines.append(
            f"Probed {len(self.outcomes)} syscalls of {self.arch} in {self.seconds:.2f}s"
            + (f"; {len(absent)} not implemented by this kernel" if absent else "")
            + "."
        )
        return "\n".join(lines)


def _wrap(words: Sequence[str], width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) > width - 4:
            lines.append("    " + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append("    " + line)
    return lines


# --------------------------------------------------------------------------- the children


@dataclass(frozen=True, slots=True)
class _Plan:
    name: str
    number: int
    args: tuple[ctypes.c_long, ...]
    special: str | None


def _make_plans(names: Iterable[tuple[str, int]]) -> list[_Plan]:
    plans = []
    for name, number in names:
        values = ARGUMENTS.get(name, (_M1,) * 6)
        plans.append(_Plan(name, number, tuple(ctypes.c_long(v) for v in values), SPECIAL.get(name)))
    return plans


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _status_for(rc: int, err: int) -> int:
    if rc != -1:
        return 0
    if 1 <= err <= _MAX_PASSED_ERRNO:
        return err
    return HIGH_ERRNO


def _vfork_stub() -> int:
    """Run the vfork stub; returns the raw kernel result (child pid or ``-errno``)."""
    if platform.machine() != "x86_64":
        raise OSError(errno.ENOTSUP, "the vfork stub exists for x86_64 only")
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_VFORK_STUB_X86_64)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    stub = ctypes.CFUNCTYPE(ctypes.c_long)(address)
    result: int = stub()
    return result


def _child(plan: _Plan) -> NoReturn:
    """Body of one probe child: make the call, exit with the encoded result."""
    code = CHILD_FAILED
    try:
        if plan.special == "stub":
            try:
                raw = _vfork_stub()
            except (OSError, ValueError):
                code = STUB_UNAVAILABLE
            else:
                if raw > 0:
                    with contextlib.suppress(OSError):
                        os.waitpid(raw, 0)
                code = 0 if raw >= 0 else _status_for(-1, -raw)
        else:
            if plan.special == "setsid":
                os.setsid()  # no controlling terminal left to hang up; failure -> CHILD_FAILED
            me = os.getpid()
            ctypes.set_errno(0)
            rc = _syscall(ctypes.c_long(plan.number), *plan.args)
            err = ctypes.get_errno()
            if plan.special == "fork":
                if os.getpid() != me:
                    os._exit(0)  # the grandchild
                if rc > 0:
                    with contextlib.suppress(OSError):
                        os.waitpid(rc, 0)
            code = _status_for(rc, err)
    finally:
        os._exit(code)


#: Seconds a child runs before the parent looks at ``/proc/<pid>/syscall``.
_SETTLE: Final = 0.05


def _sleeping_in(pid: int, number: int) -> bool:
    """True if ``/proc/<pid>/syscall`` shows the process blocked inside syscall ``number``.

    The file's first field is the number of the syscall the task sleeps in (``proc(5)``);
    "running" or an unreadable file gives False (the timeout then decides).
    """
    try:
        with open(f"/proc/{pid}/syscall", "rb") as fh:
            first = fh.read(32).split(b" ", 1)[0]
    except OSError:
        return False
    return first == str(number).encode()


def _classify(
    plan: _Plan,
    exit_status: int | None,
    sig: int | None,
    hung: str | None,
    *,
    status: SeccompStatus,
    arch: str,
    initial_userns: bool,
    implemented: frozenset[str] | None,
) -> Outcome:
    def out(verdict: Verdict, reason: str) -> Outcome:
        return Outcome(plan.name, plan.number, exit_status, sig, hung is not None, verdict, reason)

    filtering = status.mode == "filtering"
    if hung is not None:
        return out(Verdict.ALLOWED, f"{hung}: it ran")
    if sig is not None:
        if sig == signal.SIGSYS and filtering:
            return out(Verdict.BLOCKED, "killed by SIGSYS: the filter kills or traps it")
        return out(Verdict.ALLOWED, f"killed by {signal_name(sig)}: it ran")
    assert exit_status is not None
    if exit_status == EXIT_MARKER:
        return out(Verdict.ALLOWED, "the process exited: it ran")
    if exit_status == STUB_UNAVAILABLE:
        return out(Verdict.SKIPPED, "needs the x86_64 vfork stub, not available here")
    if exit_status == CHILD_FAILED:
        return out(Verdict.SKIPPED, "the probe child failed before making the call")
    if exit_status == 0:
        return out(Verdict.ALLOWED, "returned")
    if exit_status == HIGH_ERRNO:
        if filtering:
            return out(Verdict.BLOCKED, "errno >= 200: only a filter returns such a number")
        return out(Verdict.ALLOWED, "errno >= 200")
    err = exit_status
    if not filtering:
        return out(Verdict.ALLOWED, f"failed with {errno_name(err)}; no seccomp filter is installed")
    if err == errno.EPERM:
        gates = CAPABILITY_GATED.get(plan.name)
        if plan.name == "landlock_restrict_self" and status.no_new_privs:
            gates = None
        if gates:
            have = [cap for cap in gates if status.cap_eff >> CAPABILITIES[cap] & 1]
            if not have:
                return out(
                    Verdict.AMBIGUOUS,
                    f"EPERM: the filter, or the missing capability {' or '.join(gates)}",
                )
            if not initial_userns:
                return out(
                    Verdict.AMBIGUOUS,
                    f"EPERM: the filter, or {have[0]} not counting outside this user namespace",
                )
        return out(Verdict.BLOCKED, "EPERM")
    if err == errno.ENOSYS:
        if plan.name in KERNEL_ENOSYS.get(arch, frozenset()):
            return out(Verdict.AMBIGUOUS, "ENOSYS: the filter, or this kernel (it may not implement it)")
        if implemented is None:
            return out(Verdict.AMBIGUOUS, "ENOSYS: the filter, or not implemented (kallsyms unreadable)")
        if plan.name in implemented:
            return out(Verdict.BLOCKED, "ENOSYS although the kernel implements it: the filter")
        return out(Verdict.ABSENT, "ENOSYS: not implemented by this kernel")
    return out(Verdict.ALLOWED, f"failed with {errno_name(err)}: it reached the kernel")


def probe(
    *,
    arch: str | None = None,
    names: Sequence[str] | None = None,
    timeout: float = 2.0,
    jobs: int = 32,
    status_path: str | Path = "/proc/self/status",
    kallsyms_path: str | Path = "/proc/kallsyms",
) -> ProbeReport:
    """Probe every syscall of the native architecture (or only ``names``) in forked children.

    Args:
        arch: must be the native architecture (the default); the syscall numbers are made
            by this process, so no other table can be probed.
        names: restrict the probe to these syscall names (unknown names are ignored).
        timeout: seconds a child may take before it is killed (its call then counts as run).
        jobs: most children alive at once.
        status_path, kallsyms_path: where to read the mode and the kernel's syscalls (tests).

    Returns:
        The :class:`ProbeReport`; outcomes sorted by syscall number.

    Raises:
        ValueError: ``arch`` is not the native architecture, or ``jobs``/``timeout`` < 1/<= 0.
        OSError: ``fork`` or ``wait`` failed in this process (the filter may block them).
    """
    native = syscalls.native_arch()
    arch = arch or native
    if arch != native:
        raise ValueError(f"only the native architecture {native} can be probed, not {arch}")
    if jobs < 1 or timeout <= 0:
        raise ValueError("jobs must be >= 1 and timeout > 0")
    status = read_status(status_path)
    implemented = kernel_syscalls(arch, kallsyms_path)
    initial_userns = in_initial_user_namespace()
    table = native_syscalls(arch)
    if names is not None:
        wanted = set(names)
        table = [(n, nr) for n, nr in table if n in wanted]
    plans = deque(_make_plans(table))
    started = time.monotonic()
    running: dict[int, tuple[_Plan, float]] = {}
    killed: dict[int, str] = {}
    results: dict[str, Outcome] = {}
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        while plans or running:
            while plans and len(running) < jobs:
                plan = plans.popleft()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child never returns
                    _child(plan)
                running[pid] = (plan, time.monotonic())
            reaped = False
            while running:
                try:
                    pid, wstatus = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    running.clear()
                    break
                if pid == 0:
                    break
                reaped = True
                entry = running.pop(pid, None)
                if entry is None:
                    continue  # an orphan reparented to us (we may be PID 1)
                plan = entry[0]
                code = os.waitstatus_to_exitcode(wstatus)
                results[plan.name] = _classify(
                    plan,
                    code if code >= 0 else None,
                    -code if code < 0 else None,
                    killed.pop(pid, None),
                    status=status,
                    arch=arch,
                    initial_userns=initial_userns,
                    implemented=implemented,
                )
            now = time.monotonic()
            for pid, (plan, since) in running.items():
                if pid in killed or now - since < _SETTLE:
                    continue
                if _sleeping_in(pid, plan.number):
                    why = "sleeping inside the call"
                elif now - since >= timeout:
                    why = f"did not return within {timeout:g}s"
                else:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed[pid] = why
            if not reaped and running and (not plans or len(running) >= jobs):
                time.sleep(0.001)  # poll interval while children finish, bounded by their deadlines
    finally:
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in running:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    outcomes = sorted(results.values(), key=lambda o: o.number)
    return ProbeReport(status, arch, outcomes, time.monotonic() - started, implemented is not None)


# --------------------------------------------------------------------------- --expect


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a profile does with one syscall on the native architecture.

    Attributes:
        kind: ``allow`` (ALLOW, LOG), ``errno`` (ERRNO; TRACE and NOTIFY without a tracer or
            listener give ENOSYS), ``kill`` (KILL*, TRAP: SIGSYS), ``conditional`` (a rule with
            argument conditions names it: depends on the arguments, not compared).
        errno: the errno for ``errno``.
        source: ``defaultAction`` or ``syscalls[i]`` of the rendered document.
    """

    kind: str
    errno: int | None
    source: str

    def describe(self) -> str:
        """``allowed``, ``denied with EPERM``, ``killed (SIGSYS)``, ``conditional``."""
        if self.kind == "allow":
            return "allowed"
        if self.kind == "errno":
            return f"denied with {errno_name(self.errno or 0)}"
        if self.kind == "kill":
            return "killed with SIGSYS"
        return "conditional on arguments"


def _expect_action(action: str, errno_ret: Any, source: str) -> Expectation:
    if action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        return Expectation("allow", None, source)
    if action == "SCMP_ACT_ERRNO":
        return Expectation("errno", int(errno_ret) if errno_ret is not None else errno.EPERM, source)
    if action in ("SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY"):
        return Expectation("errno", errno.ENOSYS, source)
    return Expectation("kill", None, source)


def expectations(document: Mapping[str, Any], names: Iterable[str]) -> dict[str, Expectation]:
    """For each of ``names``, what the rendered OCI ``document`` does with it.

    The first rule without argument conditions naming a syscall decides (libseccomp keeps the
    first unconditional rule); a syscall named by a rule with conditions is ``conditional``;
    the rest get the default action.  Source of the action semantics: runc ``getAction`` and
    the kernel (``SECCOMP_RET_TRACE`` without a tracer and ``SECCOMP_RET_USER_NOTIF`` without
    a listener fail with ENOSYS, ``seccomp(2)``).
    """
    default = _expect_action(
        str(document.get("defaultAction")), document.get("defaultErrnoRet"), "defaultAction"
    )
    rules = list(document.get("syscalls") or ())
    result: dict[str, Expectation] = {}
    for name in names:
        found: Expectation | None = None
        for i, rule in enumerate(rules):
            if name not in (rule.get("names") or ()):
                continue
            if rule.get("args"):
                found = Expectation("conditional", None, f"syscalls[{i}]")
                break
            found = _expect_action(str(rule.get("action")), rule.get("errnoRet"), f"syscalls[{i}]")
            break
        result[name] = found or default
    return result


@dataclass(frozen=True, slots=True)
class Difference:
    """One syscall where the probe and the profile disagree."""

    name: str
    expected: str
    observed: str
    source: str

    def __str__(self) -> str:
        return f"{self.name}: the profile says {self.expected} ({self.source}), probed {self.observed}"


def _observed(outcome: Outcome) -> str:
    return f"{outcome.verdict} ({outcome.result})"


def compare(report: ProbeReport, expected: Mapping[str, Expectation]) -> tuple[list[Difference], list[str]]:
    """Differences between what was probed and what the profile says; and the names not compared.

    Per syscall: *allow* expects a verdict other than blocked; *errno N* expects exactly errno
    N (an ENOSYS expectation is also met by a call this kernel does not implement); *kill*
    expects death by SIGSYS.  Not compared: ambiguous and skipped outcomes (unless they match
    exactly) and conditional expectations.
    """
    differences: list[Difference] = []
    uncompared: list[str] = []
    for outcome in sorted(report.outcomes, key=lambda o: o.name):
        exp = expected.get(outcome.name)
        if exp is None:
            continue
        if exp.kind == "conditional" or outcome.verdict is Verdict.SKIPPED:
            uncompared.append(outcome.name)
            continue
        if exp.kind == "allow":
            ok = outcome.verdict is not Verdict.BLOCKED
        elif exp.kind == "errno":
            ok = outcome.errno == exp.errno or (
                exp.errno == errno.ENOSYS and outcome.verdict is Verdict.ABSENT
            )
        else:
            ok = outcome.signal == signal.SIGSYS
        if ok:
            continue
        if outcome.verdict is Verdict.AMBIGUOUS:
            uncompared.append(outcome.name)
            continue
        differences.append(Difference(outcome.name, exp.describe(), _observed(outcome), exp.source))
    return differences, uncompared


def load_expected(path: str, name: str | None = None) -> dict[str, Any]:
    """The rendered OCI document of a SeccompProfile file (YAML/JSON resource) or node JSON.

    Raises:
        ValueError: the file cannot be read or rendered (the findings in the message).
    """
    from . import inputs

    try:
        return dict(inputs.render_one(inputs.load_file(path), name=name).document)
    except inputs.InputError as exc:
        raise ValueError("; ".join(str(f) for f in exc.findings)) from None


# --------------------------------------------------------------------------- CLI


def cmd_probe(args: argparse.Namespace) -> int:
    """``seccomp-operator probe``: print the report.

    Exit status: 0; with ``--expect``, 1 when there is a difference, 2 on unusable input.

    From the full ``seccomp-operator`` command (``args.reexec``) the process first replaces
    itself with ``python -m seccomp_operator.probe``: every child is a fork of this process,
    and the full command has imported about 50 MB (the Kubernetes client) that make each fork
    about three times slower (measured: 6 s instead of 2 s for 368 syscalls).
    """
    if getattr(args, "reexec", False):
        _reexec(args)
    document = None
    if args.expect:
        try:
            document = load_expected(args.expect, args.name)
        except ValueError as exc:
            print(f"seccomp-operator probe: --expect {args.expect}: {exc}", file=sys.stderr)
            return 2
    try:
        report = probe(timeout=args.timeout, jobs=args.jobs)
    except (OSError, ValueError) as exc:
        print(f"seccomp-operator probe: {exc}", file=sys.stderr)
        return 2
    differences: list[Difference] = []
    uncompared: list[str] = []
    if document is not None:
        differences, uncompared = compare(report, expectations(document, [o.name for o in report.outcomes]))
    if args.output == "json":
        data = report.as_dict()
        if document is not None:
            data["expect"] = {
                "file": args.expect,
                "matches": not differences,
                "differences": [
                    {"name": d.name, "expected": d.expected, "observed": d.observed, "source": d.source}
                    for d in differences
                ],
                "notCompared": uncompared,
            }
        print(json.dumps(data, indent=2))
    else:
        print(report.text())
        if document is not None:
            if differences:
                print(f"Differences from {args.expect} ({len(differences)}):")
                for diff in differences:
                    print(f"    {diff}")
            else:
                print(f"Matches {args.expect}.")
            if uncompared:
                print(f"Not compared ({len(uncompared)}): {' '.join(uncompared)}")
    return 1 if differences else 0


def register(subparsers: Any) -> None:
    """Add the ``probe`` subcommand to the ``seccomp-operator`` parser."""
    p = subparsers.add_parser(
        "probe",
        help="report this process's seccomp mode and which syscalls its filter blocks",
        description=(
            "Make every syscall of this architecture once, each in a forked child with arguments "
            "that fail harmlessly, and report which ones the seccomp filter blocks."
        ),
    )
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument(
        "--expect",
        metavar="FILE",
        help="a SeccompProfile resource or node JSON: exit 1 when what is blocked differs from it",
    )
    p.add_argument("--name", help="which SeccompProfile of --expect FILE (when it holds several)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per child before it is killed (2)")
    p.add_argument("--jobs", type=int, default=32, help="children alive at once (32)")
    p.set_defaults(func=cmd_probe, reexec=True)


def _reexec(args: argparse.Namespace) -> None:
    """Replace this process by ``sys.executable -m seccomp_operator.probe`` with the same options.

    Returns only when that is impossible (no ``sys.executable``, ``execv`` refused): the
    probe then runs here.
    """
    if not sys.executable:
        return
    argv = [sys.executable, "-m", "seccomp_operator.probe", "--output", args.output]
    argv += ["--timeout", repr(args.timeout), "--jobs", str(args.jobs)]
    if args.expect:
        argv += ["--expect", args.expect]
    if args.name:
        argv += ["--name", args.name]
    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.suppress(OSError):
        os.execv(sys.executable, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seccomp_operator.probe [OPTIONS]``: the probe alone, with fewer imports.

    Useful inside a container that sees the project's environment read-only.
    """
    parser = argparse.ArgumentParser(prog="seccomp-operator")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["probe", *(sys.argv[1:] if argv is None else argv)])
    args.reexec = False
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
