"""The libseccomp seam: names the OCI runtime-spec knows, and what libseccomp makes of them.

Everything that asks the system's ``libseccomp.so.2`` a question lives here, so the
rest of the core stays pure Python.  The library is reached through ``pyseccomp``
(ctypes); the few calls ``pyseccomp`` does not type are bound on a private handle.

Sources of outside facts:

- The name lists (:data:`ARCHITECTURES`, :data:`ACTIONS`, :data:`OPERATORS`,
  :data:`FLAGS`) are the ``SeccompArch``, ``SeccompAction``, ``SeccompOperators``
  and ``SeccompFlag`` enums of the OCI runtime-spec schema ``schema/defs-linux.json``.
- :func:`compile_filter` follows runc ``libcontainer/seccomp/seccomp_linux.go``
  (``InitSeccomp``/``matchCall``/``getAction``): ``SCMP_ACT_KILL`` is kill-thread,
  ERRNO/TRACE without ``errnoRet`` return ``EPERM``, a rule whose action equals the
  default action is skipped, names libseccomp cannot resolve are skipped, conditions
  on the same argument index become separate rules, and the binary-tree optimizer is
  enabled above 32 syscalls.
- libseccomp resolves a name to a real number, to a *multiplexed* pseudo number
  (``-101``..``-299``: socketcall/ipc calls on x86, s390, ppc…, which libseccomp
  filters through the multiplexer), to a pseudo number at or below ``-10000`` (the
  call exists on other architectures only) or to ``-1`` (``__NR_SCMP_ERROR``: not a
  syscall libseccomp knows).  See libseccomp ``include/seccomp-syscalls.h``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyseccomp

#: OCI ``SeccompArch`` enum (runtime-spec ``schema/defs-linux.json``), in schema order.
ARCHITECTURES: Final[tuple[str, ...]] = (
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
)

#: OCI ``SeccompAction`` enum, exactly as the runtimes compare it (case-sensitive).
ACTIONS: Final[tuple[str, ...]] = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)

#: OCI ``SeccompOperators`` enum.
OPERATORS: Final[tuple[str, ...]] = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)

#: OCI ``SeccompFlag`` enum.
FLAGS: Final[tuple[str, ...]] = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)

#: Actions that may carry an errno (``errnoRet``/``defaultErrnoRet``): runc ``getAction``.
ERRNO_ACTIONS: Final[frozenset[str]] = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

#: Errno runc uses for ERRNO/TRACE without an explicit value (runc ``actErrno``/``actTrace``).
DEFAULT_ERRNO: Final = errno.EPERM

#: ``SECCOMP_RET_DATA`` is the low 16 bits of a filter's return value
#: (kernel ``include/uapi/linux/seccomp.h``): the largest errno a filter can carry.
MAX_RET_DATA: Final = 0xFFFF

#: libseccomp refuses ``SCMP_ACT_ERRNO(n)`` for ``n >= MAX_ERRNO`` (4095, libseccomp
#: ``src/system.c`` ``sys_chk_seccomp_action``), so runc and crun cannot load more than this.
MAX_LIBSECCOMP_ERRNO: Final = 4094

#: Kernel limit on one classic-BPF program (``BPF_MAXINSNS``,
#: ``include/uapi/linux/bpf_common.h``); ``seccomp()`` refuses longer filters.
BPF_MAXINSNS: Final = 4096

#: At most six syscall arguments exist (runc ``syscallMaxArguments``).
MAX_ARGS: Final = 6

#: libseccomp's ``__NR_SCMP_ERROR``: the name is not a syscall libseccomp knows.
_NR_SCMP_ERROR: Final = -1
#: Pseudo numbers at or below this mean "exists on other architectures only".
_PNR_FOREIGN: Final = -10000

_ACTION_VALUES: Final[dict[str, int]] = {
    "SCMP_ACT_KILL": pyseccomp.KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": pyseccomp.KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": pyseccomp.KILL_PROCESS,
    "SCMP_ACT_TRAP": pyseccomp.TRAP,
    "SCMP_ACT_ALLOW": pyseccomp.ALLOW,
    "SCMP_ACT_LOG": pyseccomp.LOG,
    "SCMP_ACT_NOTIFY": pyseccomp.NOTIFY,
}

_OPERATOR_VALUES: Final[dict[str, int]] = {
    "SCMP_CMP_NE": pyseccomp.NE,
    "SCMP_CMP_LT": pyseccomp.LT,
    "SCMP_CMP_LE": pyseccomp.LE,
    "SCMP_CMP_EQ": pyseccomp.EQ,
    "SCMP_CMP_GE": pyseccomp.GE,
    "SCMP_CMP_GT": pyseccomp.GT,
    "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ,
}

# A private handle on the library pyseccomp found, so the argtypes set here do not
# change pyseccomp's own function objects.
_lib = ctypes.CDLL(getattr(pyseccomp, "_libseccomp_path", None) or "libseccomp.so.2")
_lib.seccomp_syscall_resolve_name_arch.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
_lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
_lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
_lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
_lib.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
_lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32


class _Version(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint))


_lib.seccomp_version.argtypes = ()
_lib.seccomp_version.restype = ctypes.POINTER(_Version)


class CompileError(Exception):
    """libseccomp (or runc's rules for using it) refused a rendered document.

    Attributes:
        path: the field of the OCI document, e.g. ``syscalls[3].names[0]`` or ``defaultAction``.
        message: what was refused, in the user's terms.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def _encode(text: str) -> bytes | None:
    """``text`` as a C string, or None if it cannot be one (NUL byte, lone surrogate)."""
    if "\x00" in text:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


@functools.lru_cache(maxsize=64)
def arch_token(arch: str) -> int:
    """libseccomp's ``scmp_arch`` value for an OCI arch name, 0 if this libseccomp lacks it.

    ``SCMP_ARCH_X86_64`` → ``seccomp_arch_resolve_name("x86_64")``.  Names outside
    :data:`ARCHITECTURES` always give 0.
    """
    if arch not in ARCHITECTURES:
        return 0
    raw = _encode(arch.removeprefix("SCMP_ARCH_").lower())
    return int(_lib.seccomp_arch_resolve_name(raw)) if raw is not None else 0


def arch_known(arch: str) -> bool:
    """True if the local libseccomp can build filters (and resolve names) for ``arch``."""
    return arch_token(arch) != 0


def known_architectures() -> tuple[str, ...]:
    """The OCI arch names the local libseccomp knows, in :data:`ARCHITECTURES` order."""
    return tuple(a for a in ARCHITECTURES if arch_known(a))


@functools.lru_cache(maxsize=1)
def libseccomp_version() -> str:
    """The local libseccomp's version, ``"2.5.4"`` (``seccomp_version()``)."""
    version = _lib.seccomp_version().contents
    return f"{version.major}.{version.minor}.{version.micro}"


@functools.lru_cache(maxsize=1)
def native_arch() -> str:
    """The OCI name of the architecture this process runs on (``seccomp_arch_native()``).

    Raises:
        RuntimeError: if libseccomp reports an architecture outside :data:`ARCHITECTURES`.
    """
    native = int(pyseccomp.system_arch())
    for arch in ARCHITECTURES:
        if arch_token(arch) == native:
            return arch
    raise RuntimeError(f"libseccomp reports native arch {native:#x}, which has no OCI name")


@functools.lru_cache(maxsize=65536)
def _resolve_raw(name: str, token: int) -> int:
    raw = _encode(name)
    if raw is None or not raw:
        return _NR_SCMP_ERROR
    return int(_lib.seccomp_syscall_resolve_name_arch(token, raw))


def resolve(name: str, arch: str) -> int | None:
    """The syscall number of ``name`` on ``arch`` as libseccomp knows it, or None.

    Shape: a non-negative number, or a negative multiplexed pseudo number
    (``-101``..``-299``, socketcall/ipc calls that libseccomp filters through the
    multiplexer, e.g. ``socket`` on ``SCMP_ARCH_X86``).  None when libseccomp returns
    ``-1`` (unknown name), a pseudo number ``<= -10000`` (the call exists on other
    architectures only), or when the arch is unknown to this libseccomp.
    Source: libseccomp ``seccomp_syscall_resolve_name_arch``.
    """
    token = arch_token(arch)
    if not token:
        return None
    number = _resolve_raw(name, token)
    if number == _NR_SCMP_ERROR or number <= _PNR_FOREIGN:
        return None
    return number


@functools.lru_cache(maxsize=65536)
def is_syscall(name: str) -> bool:
    """True if ``name`` is a syscall on at least one architecture the local libseccomp knows."""
    return any(resolve(name, arch) is not None for arch in known_architectures())


@functools.lru_cache(maxsize=65536)
def _resolve_native(name: str) -> int:
    """``seccomp_syscall_resolve_name`` (what runc's ``GetSyscallFromName`` calls)."""
    raw = _encode(name)
    if raw is None or not raw:
        return _NR_SCMP_ERROR
    return int(_lib.seccomp_syscall_resolve_name(raw))


def resolve_number(number: int, arch: str) -> str | None:
    """The syscall name for ``number`` on ``arch``, or None (``seccomp_syscall_resolve_num_arch``)."""
    token = arch_token(arch)
    if not token or not -(2**31) <= number < 2**31:
        return None
    try:
        name: bytes = pyseccomp.resolve_syscall(token, number)
        return name.decode("ascii")
    except ValueError:
        return None


@functools.lru_cache(maxsize=1)
def syscall_names() -> frozenset[str]:
    """Every syscall name the local libseccomp can map back from a number (for suggestions).

    Scans numbers 0..1199 on each known arch (MIPS o32/n64/n32 tables start at
    4000/5000/6000; the ARM private calls at ``0xf0000``).  About 480 names for 2.5.4.
    """
    bases = {
        "SCMP_ARCH_MIPS": (4000,),
        "SCMP_ARCH_MIPSEL": (4000,),
        "SCMP_ARCH_MIPS64": (5000,),
        "SCMP_ARCH_MIPSEL64": (5000,),
        "SCMP_ARCH_MIPS64N32": (6000,),
        "SCMP_ARCH_MIPSEL64N32": (6000,),
        "SCMP_ARCH_X32": (0x40000000,),
        "SCMP_ARCH_ARM": (0, 0xF0000),
    }
    names: set[str] = set()
    for arch in known_architectures():
        for base in bases.get(arch, (0,)):
            for offset in range(1200 if base != 0xF0000 else 16):
                name = resolve_number(base + offset, arch)
                if name is not None:
                    names.add(name)
    return frozenset(names)


def action_value(action: str, errno_ret: int | None = None) -> int:
    """libseccomp's action value for an OCI action string, as runc ``getAction`` builds it.

    ``SCMP_ACT_ERRNO``/``SCMP_ACT_TRACE`` carry ``errno_ret`` (EPERM when None) in the
    low 16 bits; the other actions ignore ``errno_ret``.

    Raises:
        ValueError: ``action`` is not in :data:`ACTIONS`, or ``errno_ret`` is outside 0..65535.
    """
    if action in ERRNO_ACTIONS:
        value = DEFAULT_ERRNO if errno_ret is None else errno_ret
        if not 0 <= value <= MAX_RET_DATA:
            raise ValueError(f"errno {value} does not fit the 16-bit SECCOMP_RET_DATA field")
        maker = pyseccomp.ERRNO if action == "SCMP_ACT_ERRNO" else pyseccomp.TRACE
        result: int = maker(value)
        return result
    if action not in _ACTION_VALUES:
        raise ValueError(f"{action!r} is not an OCI seccomp action")
    return _ACTION_VALUES[action]


def operator_value(op: str) -> int:
    """libseccomp's comparison operator for an OCI ``op`` string.

    Raises:
        ValueError: ``op`` is not in :data:`OPERATORS`.
    """
    if op not in _OPERATOR_VALUES:
        raise ValueError(f"{op!r} is not an OCI seccomp operator")
    return _OPERATOR_VALUES[op]


def _conditions(args: Sequence[Mapping[str, Any]], path: str) -> list[list[pyseccomp.Arg]]:
    """The condition sets runc adds for one rule: one set, or one per arg when an index repeats."""
    conds: list[pyseccomp.Arg] = []
    indexes: list[int] = []
    for k, arg in enumerate(args):
        try:
            index, value = int(arg["index"]), int(arg["value"])
            two = int(arg.get("valueTwo") or 0)
            op = operator_value(str(arg["op"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CompileError(f"{path}.args[{k}]", f"cannot build a condition: {exc}") from None
        if not 0 <= index < MAX_ARGS or not 0 <= value < 2**64 or not 0 <= two < 2**64:
            raise CompileError(f"{path}.args[{k}]", "index must be 0..5 and values 0..2^64-1")
        conds.append(pyseccomp.Arg(index, op, value, two))
        indexes.append(index)
    if not conds:
        return [[]]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def compile_filter(document: Mapping[str, Any]) -> int:
    """Build the libseccomp filter runc would build from a rendered OCI document.

    Shape of ``document``: the OCI ``linux.seccomp`` object (``defaultAction``,
    optional ``defaultErrnoRet``, ``architectures``, ``flags``, ``listenerPath``,
    ``listenerMetadata``, ``syscalls`` with ``names``/``action``/``errnoRet``/``args``).

    Steps, after runc ``InitSeccomp``: a filter with the default action; every listed
    arch added (the native arch is always present; arches this libseccomp does not
    know are skipped, as they cannot be checked here); the binary-tree optimizer when
    more than 32 names are listed; every rule added with ``seccomp_rule_add`` except
    rules whose action equals the default action and names libseccomp cannot resolve
    (both skipped, like runc).  ``flags`` and the listener fields change how the kernel
    loads the filter, not the program, and are not applied.

    Returns:
        The number of classic-BPF instructions of the exported program (bytes // 8).

    Raises:
        CompileError: libseccomp refused something; ``path`` names the document field.
    """
    default_name = str(document.get("defaultAction", ""))
    if default_name == "SCMP_ACT_NOTIFY":
        raise CompileError("defaultAction", "runc refuses SCMP_ACT_NOTIFY as the default action")
    try:
        default = action_value(default_name, document.get("defaultErrnoRet"))
    except (TypeError, ValueError) as exc:
        raise CompileError("defaultAction", str(exc)) from None
    try:
        flt = pyseccomp.SyscallFilter(default)
    except OSError as exc:
        raise CompileError(
            "defaultAction", f"libseccomp refused the default action: {exc.strerror}"
        ) from None

    for i, arch in enumerate(document.get("architectures") or ()):
        token = arch_token(str(arch))
        if not token:
            continue
        try:
            flt.add_arch(token)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise CompileError(
                    f"architectures[{i}]", f"libseccomp refused {arch}: {exc.strerror}"
                ) from None

    rules: Sequence[Mapping[str, Any]] = document.get("syscalls") or ()
    if sum(len(rule.get("names") or ()) for rule in rules) > 32:
        with contextlib.suppress(OSError):  # older libseccomp: runc ignores this too
            flt.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)

    for i, rule in enumerate(rules):
        path = f"syscalls[{i}]"
        action = str(rule.get("action", ""))
        try:
            value = action_value(action, rule.get("errnoRet"))
        except (TypeError, ValueError) as exc:
            raise CompileError(f"{path}.action", str(exc)) from None
        if value == default:
            continue  # runc: "This rule is redundant, silently skip it"
        condition_sets = _conditions(rule.get("args") or (), path)
        for j, name in enumerate(rule.get("names") or ()):
            if action == "SCMP_ACT_NOTIFY" and name == "write":
                raise CompileError(f"{path}.names[{j}]", "runc refuses SCMP_ACT_NOTIFY for write")
            number = _resolve_native(str(name))
            if number == _NR_SCMP_ERROR:
                continue  # runc: "unknown seccomp syscall ignored"
            for conds in condition_sets:
                try:
                    flt.add_rule(value, number, *conds)
                except OSError as exc:
                    raise CompileError(
                        f"{path}.names[{j}]", f"libseccomp refused the rule for {name!r}: {exc.strerror}"
                    ) from None

    with tempfile.TemporaryFile() as fh:
        try:
            flt.export_bpf(fh)
        except OSError as exc:
            raise CompileError("", f"libseccomp could not generate the BPF program: {exc.strerror}") from None
        size = fh.seek(0, 2)
    return size // 8
