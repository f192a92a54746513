"""Semantic checks of a parsed profile: what the runtimes would refuse or silently misread.

:func:`validate` runs every check in :data:`CHECKS` (a table: add a function with the
:func:`check` decorator to extend it) over a :class:`~.spec.ProfileSpec` and returns
findings in the user's terms.  Errors stop a profile from being written; warnings and
infos travel with it.

Policy for syscall names (libseccomp semantics, case 002):

- a name that is a syscall on no architecture the local libseccomp knows is an error
  (``""``, ``<unknown>``, sysdig event names such as ``procexit``, ``pread``), unless it is a
  known syscall added to Linux after this libseccomp (:data:`NEWER_SYSCALLS`): warning;
- a real syscall missing on some or all of the listed architectures (those this libseccomp
  knows) is a warning naming them (``vm86`` on ``SCMP_ARCH_X86_64``: the entry has no
  effect there).  A profile without ``architectures`` runs on whatever the node's native
  architecture is, which need not be the operator's, so no per-arch warning is given then.

(An unknown name is not refused by the runtimes: runc and crun skip names their libseccomp
cannot resolve.  It is an error here because it is always a mistake, and an allow list
with a wrong name fails at container start, far from the author.)

Sources of outside facts: the OCI runtime-spec schema (names), runc
``libcontainer/seccomp`` (notify refused as default and on ``write``, ERRNO/TRACE default
to EPERM, rules with the default action skipped, same-index conditions split into
separate rules, supported arches and flags), libseccomp (errno above 4094 refused; first
unconditional rule for a syscall wins), the kernel (``SECCOMP_RET_DATA`` is 16 bits, a
unix socket path is at most 107 bytes, ``sun_path`` in ``unix(7)``), runc issue 4984 and
glibc 2.34 (fallbacks from ``openat2``/``clone3`` only on ENOSYS, case 005).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from . import constants as c
from . import paths, syscalls
from .findings import Finding, Severity, errors
from .spec import (
    ProfileSpec,
    SyscallRule,
    join,
    parse_profile_json,
    parse_spec,
    quote,
    show_number,
    suggest,
)

#: Actions under which a syscall (possibly) runs: a profile needs at least one for a container to start.
ALLOWING_ACTIONS: Final = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"})
KILLING_ACTIONS: Final = frozenset({"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"})
#: Default actions under which a profile without allowing rules stops every container.
DENYING_DEFAULTS: Final = frozenset({*KILLING_ACTIONS, "SCMP_ACT_ERRNO", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"})

#: Architectures runc accepts (runc ``libcontainer/seccomp/config.go`` ``archs``).
RUNC_ARCHITECTURES: Final = frozenset(
    {
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_LOONGARCH64",
    }
)
#: Filter flags runc knows (runc ``libcontainer/seccomp/config.go`` ``flags``).
RUNC_FLAGS: Final = frozenset(
    {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}
)

#: Syscalls added in Linux 6.8–6.17 (kernel ``arch/x86/entry/syscalls/syscall_64.tbl``), and
#: ``riscv_hwprobe`` (Linux 6.4, riscv only, ``arch/riscv/include/uapi/asm/unistd.h``), that
#: libseccomp 2.5.x may not know yet; runc skips names its libseccomp cannot resolve.
NEWER_SYSCALLS: Final = frozenset(
    {
        "statmount",
        "listmount",
        "lsm_get_self_attr",
        "lsm_set_self_attr",
        "lsm_list_modules",
        "mseal",
        "uretprobe",
        "setxattrat",
        "getxattrat",
        "listxattrat",
        "removexattrat",
        "open_tree_attr",
        "file_getattr",
        "file_setattr",
        "riscv_hwprobe",
    }
)

#: Names people write for a syscall that libseccomp spells differently.
NAME_FIXES: Final[Mapping[str, str]] = {
    "pread": "pread64",
    "pwrite": "pwrite64",
    "fstatat": "newfstatat",
    "wait": "wait4",
    "wait3": "wait4",
    "sbrk": "brk",
    "stat64at": "fstatat64",
}

#: The call a libc uses instead of a name missing on some architectures (e.g. aarch64 has no ``open``).
ARCH_ALTERNATIVES: Final[Mapping[str, str]] = {
    "open": "openat",
    "stat": "newfstatat",
    "lstat": "newfstatat",
    "access": "faccessat",
    "dup2": "dup3",
    "pipe": "pipe2",
    "poll": "ppoll",
    "select": "pselect6",
    "epoll_wait": "epoll_pwait",
    "epoll_create": "epoll_create1",
    "fork": "clone",
    "vfork": "clone",
    "sigreturn": "rt_sigreturn",
    "getdents": "getdents64",
    "unlink": "unlinkat",
    "rmdir": "unlinkat",
    "mkdir": "mkdirat",
    "rename": "renameat2",
    "chmod": "fchmodat",
    "chown": "fchownat",
    "readlink": "readlinkat",
    "symlink": "symlinkat",
    "link": "linkat",
    "mknod": "mknodat",
    "umount": "umount2",
}

#: Event names of sysdig/falco captures that are not syscalls (case 002).
TRACER_EVENTS: Final = frozenset(
    {
        "procexit",
        "procinfo",
        "signaldeliver",
        "switch",
        "page_fault",
        "container",
        "notification",
        "infra",
        "drop",
        "cpu_hotplug",
        "scapevent",
        "tracer",
        "k8s",
        "mesos",
        "sysdigevent",
        "meta",
    }
)

#: Words that tools put into syscall lists by mistake, and what they are (case 018: ``strace -c``).
TOOL_ARTEFACTS: Final[Mapping[str, str]] = {
    "total": "the summary row of an `strace -c` table",
    "syscall": "the column header of an `strace -c` table",
    "calls": "a column header of an `strace -c` table",
    "errors": "a column header of an `strace -c` table",
}

_ACTION_SYNONYMS: Final[Mapping[str, str]] = {
    "DENY": "SCMP_ACT_ERRNO",
    "BLOCK": "SCMP_ACT_ERRNO",
    "REJECT": "SCMP_ACT_ERRNO",
    "EPERM": "SCMP_ACT_ERRNO",
    "ACCEPT": "SCMP_ACT_ALLOW",
    "PERMIT": "SCMP_ACT_ALLOW",
    "AUDIT": "SCMP_ACT_LOG",
    "COMPLAIN": "SCMP_ACT_LOG",
}
_ARCH_SYNONYMS: Final[Mapping[str, str]] = {
    "AMD64": "SCMP_ARCH_X86_64",
    "X86-64": "SCMP_ARCH_X86_64",
    "ARM64": "SCMP_ARCH_AARCH64",
    "386": "SCMP_ARCH_X86",
    "I386": "SCMP_ARCH_X86",
    "I686": "SCMP_ARCH_X86",
    "LOONG64": "SCMP_ARCH_LOONGARCH64",
}
_PLACEHOLDER_NUMBER = re.compile(r"^(?:syscall|sys|unknown|nr)[_#-]?(0x[0-9a-fA-F]+|[0-9]+)$")
_PREFIXED = re.compile(r"^(?:SYS_|__NR_|sys_|__x64_sys_|__arm64_sys_)(\w+)$")
_UNIX_PATH_MAX: Final = 107  # sun_path is 108 bytes including the NUL (unix(7))


#: Most wrong syscall names reported (and checked) per profile.
NAME_ERROR_LIMIT: Final = 100


@dataclass
class Context:
    """What a check sees: the spec, how to name its fields, and shared derived facts.

    Attributes:
        spec: the profile.
        prefix: path prefix (``spec`` for resources, ``""`` for bare JSON).
        rule_paths: field path of each rule (``spec.syscalls[i]`` unless given otherwise,
            e.g. for rules merged in from a base profile).
        arch_paths: field path of each architecture entry.
        checked_arches: the listed architectures this libseccomp knows (names are checked on them).
        arch_warned: names already warned about as missing on some architecture.
    """

    spec: ProfileSpec
    prefix: str
    rule_paths: Sequence[str]
    arch_paths: Sequence[str]
    checked_arches: tuple[str, ...] = field(default=())
    arch_warned: set[str] = field(default_factory=set)
    #: "Did you mean" searches left for this profile (each costs ~10 ms of difflib): a
    #: profile with 100,000 unknown names must not cost the controller and every agent minutes.
    suggestions_left: int = 50
    #: Wrong syscall names reported so far; past :data:`NAME_ERROR_LIMIT` the rest are not checked.
    name_errors: int = 0

    def path(self, key: str) -> str:
        """Top-level field path: ``spec.defaultAction``."""
        return join(self.prefix, key)


Check = Callable[[Context], Iterable[Finding]]
#: The checks :func:`validate` runs, in order.  Extend with :func:`check`.
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register ``fn`` in :data:`CHECKS`."""
    CHECKS.append(fn)
    return fn


def _error(path: str, message: str, hint: str = "") -> Finding:
    return Finding(Severity.ERROR, path, message, hint)


def _warning(path: str, message: str, hint: str = "") -> Finding:
    return Finding(Severity.WARNING, path, message, hint)


def _info(path: str, message: str, hint: str = "") -> Finding:
    return Finding(Severity.INFO, path, message, hint)


def _enum(
    value: str,
    path: str,
    allowed: Sequence[str],
    what: str,
    synonyms: Mapping[str, str],
    expand: Callable[[str], str],
) -> Finding | None:
    """An error if ``value`` is not exactly one of ``allowed``; with a did-you-mean."""
    if value in allowed:
        return None
    if not value:
        return _error(path, f"empty string; {what} is required", f"one of: {', '.join(allowed)}")
    key = value.strip().upper()
    near = synonyms.get(key) or synonyms.get(key.rsplit("_", 1)[-1])
    if near is None:
        expanded = expand(key)
        near = expanded if expanded in allowed else suggest(value, allowed)
    message = f"{quote(value)} is not {what}"
    if value != value.strip():
        message += " (it has leading or trailing spaces; runtimes compare names exactly)"
    elif near and near.upper() == value.upper():
        message += " (runtimes compare names exactly, case-sensitive)"
    hint = f'did you mean "{near}"?' if near else f"one of: {', '.join(allowed)}"
    return _error(path, message, hint)


def _action_error(value: str, path: str) -> Finding | None:
    return _enum(
        value, path, syscalls.ACTIONS, "an OCI seccomp action", _ACTION_SYNONYMS, lambda k: f"SCMP_ACT_{k}"
    )


def effective(action: str, errno_ret: int | None) -> tuple[str, int | None]:
    """What a runtime makes of an action: ERRNO/TRACE without errno are EPERM, KILL is KILL_THREAD (runc)."""
    if action in syscalls.ERRNO_ACTIONS:
        return action, syscalls.DEFAULT_ERRNO if errno_ret is None else errno_ret
    if action == "SCMP_ACT_KILL":
        return "SCMP_ACT_KILL_THREAD", None
    return action, None


def _errno_findings(value: int, action: str, path: str) -> Iterator[Finding]:
    if value < 0:
        yield _error(
            path,
            f"{show_number(value)} is negative; an errno is a positive number",
            "e.g. 1 (EPERM) or 38 (ENOSYS)",
        )
    elif value > syscalls.MAX_RET_DATA:
        yield _error(
            path,
            f"{show_number(value)} does not fit the 16-bit SECCOMP_RET_DATA field "
            f"(at most {syscalls.MAX_RET_DATA}); the kernel would keep only {value & syscalls.MAX_RET_DATA}",
            "use an errno such as 1 (EPERM) or 38 (ENOSYS)",
        )
    elif action == "SCMP_ACT_ERRNO" and value > syscalls.MAX_LIBSECCOMP_ERRNO:
        yield _error(
            path,
            f"{show_number(value)} is above {syscalls.MAX_LIBSECCOMP_ERRNO}; libseccomp (used by runc "
            "and crun) refuses larger errno values, so no container could start",
            "use an errno such as 1 (EPERM) or 38 (ENOSYS)",
        )
    elif action == "SCMP_ACT_ERRNO" and value == 0:
        yield _warning(
            path,
            "errno 0 makes the syscall return 0 (success) without running it",
            "use 1 (EPERM) or 38 (ENOSYS) to deny it",
        )


# --- top level ---------------------------------------------------------------------------


@check
def _default_action(ctx: Context) -> Iterator[Finding]:
    spec, path = ctx.spec, ctx.path("defaultAction")
    if not spec.default_action:
        yield _error(path, "required field is missing", 'e.g. "SCMP_ACT_ERRNO" for an allow list')
        return
    found = _action_error(spec.default_action, path)
    if found:
        yield found
        return
    if spec.default_action == "SCMP_ACT_NOTIFY":
        yield _error(
            path,
            "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own syscalls (write included) would "
            "wait for the agent; runc refuses it",
            "use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW as default and notify only selected syscalls",
        )


@check
def _default_errno(ctx: Context) -> Iterator[Finding]:
    spec, path = ctx.spec, ctx.path("defaultErrnoRet")
    if spec.default_errno_ret is None:
        return
    action = spec.default_action
    if action in syscalls.ACTIONS and action not in syscalls.ERRNO_ACTIONS:
        yield _error(
            path,
            "defaultErrnoRet is only meaningful with defaultAction SCMP_ACT_ERRNO or SCMP_ACT_TRACE, "
            f"not {action}",
            "remove defaultErrnoRet or change defaultAction",
        )
        return
    yield from _errno_findings(spec.default_errno_ret, action, path)


@check
def _architectures(ctx: Context) -> Iterator[Finding]:
    unknown_here: list[str] = []
    for arch, path in zip(ctx.spec.architectures, ctx.arch_paths, strict=True):
        found = _enum(
            arch,
            path,
            syscalls.ARCHITECTURES,
            "an OCI seccomp architecture",
            _ARCH_SYNONYMS,
            lambda k: f"SCMP_ARCH_{k}",
        )
        if found:
            yield found
            continue
        if arch not in RUNC_ARCHITECTURES:
            yield _warning(
                path,
                f"runc does not support {arch}; containers using this profile fail to start on runc nodes",
                "remove it unless all nodes use another runtime",
            )
        if not syscalls.arch_known(arch) and arch not in unknown_here:
            unknown_here.append(arch)
            yield _info(
                path,
                f"libseccomp {syscalls.libseccomp_version()} here does not know {arch}: syscall names "
                "are not "
                "checked for it, and nodes with such a libseccomp refuse the profile",
            )


@check
def _flags(ctx: Context) -> Iterator[Finding]:
    for i, flag in enumerate(ctx.spec.flags):
        path = f"{ctx.path('flags')}[{i}]"
        found = _enum(
            flag, path, syscalls.FLAGS, "an OCI seccomp filter flag", {}, lambda k: f"SECCOMP_FILTER_FLAG_{k}"
        )
        if found:
            yield found
        elif flag not in RUNC_FLAGS:
            yield _warning(
                path,
                f'runc does not know {flag} and refuses the profile ("seccomp flag ... is not known to '
                'runc")',
                "remove it unless all nodes use a runtime that supports it (e.g. crun)",
            )


@check
def _flags_need_new_runc(ctx: Context) -> Iterator[Finding]:
    """Any ``flags`` at all: runc before 1.2.0 refuses the profile (runc pull request 3390).

    Measured with runc 1.1.5 (Debian 12): ``runc create failed: seccomp flags are not yet
    supported by runc``, whatever the flag.
    """
    if ctx.spec.flags:
        yield _warning(
            ctx.path("flags"),
            'runc releases before 1.2.0 refuse any flags ("seccomp flags are not yet supported by runc"): '
            "containers using this profile fail to start on such nodes (e.g. Debian 12's runc 1.1.5)",
            "remove flags unless every node runs runc 1.2.0 or later, or crun",
        )


@check
def _listener(ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec
    notify = any(rule.action == "SCMP_ACT_NOTIFY" for rule in spec.syscalls)
    if spec.listener_path is None:
        if spec.listener_metadata:
            yield _error(
                ctx.path("listenerMetadata"),
                "listenerMetadata is sent to the seccomp agent at listenerPath, which is not set",
                "set listenerPath or remove listenerMetadata",
            )
        return
    path = ctx.path("listenerPath")
    if not spec.listener_path.startswith("/"):
        yield _error(
            path,
            f"{quote(spec.listener_path)} is not an absolute path; the runtime connects to this unix "
            "socket on the node",
            f'write "/{spec.listener_path}" or the full path of the agent\'s socket',
        )
    elif len(spec.listener_path.encode("utf-8", "replace")) > _UNIX_PATH_MAX:
        yield _error(
            path,
            f"a unix socket path is at most {_UNIX_PATH_MAX} bytes (sun_path), this one is longer",
            "use a shorter path",
        )
    if not notify:
        yield _info(path, "no rule uses SCMP_ACT_NOTIFY, so the runtime will not contact the agent")


@check
def _state(ctx: Context) -> Iterator[Finding]:
    allowed = (c.STATE_ENABLED, c.STATE_DISABLED)
    found = _enum(ctx.spec.state, ctx.path("state"), allowed, "a profile state", {}, lambda k: k.capitalize())
    if found:
        yield found


@check
def _base_profile(ctx: Context) -> Iterator[Finding]:
    name = ctx.spec.base_profile_name
    if name is None:
        return
    try:
        paths.check_component(name, "baseProfileName")
    except paths.UnsafeNameError:
        yield _error(
            ctx.path("baseProfileName"),
            f"{quote(name)} is not a valid profile name (a DNS subdomain: lower case letters, digits, "
            "- and .)",
            "name a SeccompProfile in the same namespace",
        )


# --- rules --------------------------------------------------------------------------------


@check
def _rule_actions(ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec
    default = effective(spec.default_action, spec.default_errno_ret)
    for rule, path in zip(spec.syscalls, ctx.rule_paths, strict=True):
        apath = join(path, "action")
        if not rule.action:
            yield _error(apath, "required field is missing", 'e.g. "SCMP_ACT_ALLOW" or "SCMP_ACT_ERRNO"')
            continue
        found = _action_error(rule.action, apath)
        if found:
            yield found
            continue
        if rule.action == "SCMP_ACT_NOTIFY" and not spec.listener_path:
            yield _error(
                apath,
                "SCMP_ACT_NOTIFY needs listenerPath: the runtime sends the notification fd to the "
                "seccomp agent "
                "listening there",
                'set listenerPath (e.g. "/run/seccomp-agent/agent.sock") at the top level',
            )
        if rule.errno_ret is not None:
            epath = join(path, "errnoRet")
            if rule.action not in syscalls.ERRNO_ACTIONS:
                yield _error(
                    epath,
                    f"errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE; {rule.action} "
                    "cannot "
                    "return an errno",
                    "remove errnoRet, or use action SCMP_ACT_ERRNO",
                )
            else:
                yield from _errno_findings(rule.errno_ret, rule.action, epath)
        if spec.default_action in syscalls.ACTIONS and effective(rule.action, rule.errno_ret) == default:
            yield _info(
                apath,
                "this rule has the same effect as defaultAction; runc skips such rules, so it is left "
                "out of the "
                "written file",
            )


@check
def _rule_args(ctx: Context) -> Iterator[Finding]:
    for rule, path in zip(ctx.spec.syscalls, ctx.rule_paths, strict=True):
        if len(rule.args) > syscalls.MAX_ARGS:
            yield _error(
                join(path, "args"),
                f"{len(rule.args)} conditions; a syscall has at most {syscalls.MAX_ARGS} arguments",
            )
        seen: set[int] = set()
        repeated = False
        for k, arg in enumerate(rule.args):
            apath = f"{join(path, 'args')}[{k}]"
            if not 0 <= arg.index < syscalls.MAX_ARGS:
                yield _error(
                    join(apath, "index"), f"{show_number(arg.index)} is not an argument index", "use 0..5"
                )
            for key, value in (("value", arg.value), ("valueTwo", arg.value_two)):
                if value is not None and not 0 <= value < 2**64:
                    yield _error(
                        join(apath, key),
                        f"{show_number(value)} is not an unsigned 64-bit number",
                        "use 0..2^64-1",
                    )
            found = _enum(
                arg.op,
                join(apath, "op"),
                syscalls.OPERATORS,
                "an OCI seccomp operator",
                {},
                lambda k: f"SCMP_CMP_{k}",
            )
            if found:
                yield found
            elif arg.value_two is not None and arg.value_two != 0 and arg.op != "SCMP_CMP_MASKED_EQ":
                yield _info(
                    join(apath, "valueTwo"),
                    f"valueTwo is only used by SCMP_CMP_MASKED_EQ; {arg.op} ignores it",
                )
            repeated = repeated or arg.index in seen
            seen.add(arg.index)
        if repeated:
            yield _warning(
                join(path, "args"),
                "several conditions on the same argument: runc adds each as its own rule, so they are OR-ed, "
                "not AND-ed",
                "use one condition per argument index if all must hold",
            )


def _unknown_name(name: str, ctx: Context) -> tuple[str, str]:
    """Message and hint for a name that is not a syscall anywhere."""
    if "<" in name or ">" in name:
        return (
            f"{quote(name)} is not a syscall (it looks like a tracer placeholder for an unnamed call)",
            "remove it",
        )
    if name.lower() in TRACER_EVENTS:
        return f"{quote(name)} is a tracer event name (sysdig/falco), not a syscall", "remove it"
    if name != name.strip() and syscalls.is_syscall(name.strip()):
        return f"{quote(name)} has leading or trailing spaces", f'write "{name.strip()}"'
    if match := _PLACEHOLDER_NUMBER.match(name):
        number = int(match.group(1), 0)
        named = [
            f"{found} on {arch}"
            for arch in ctx.checked_arches or (syscalls.native_arch(),)
            if (found := syscalls.resolve_number(number, arch)) is not None
        ]
        hint = f"number {number} is {', '.join(named)}" if named else "write the syscall's name"
        return f"{quote(name)} is a placeholder for syscall number {number}, not a syscall name", hint
    if (match := _PREFIXED.match(name)) and syscalls.is_syscall(match.group(1)):
        return f"{quote(name)} is not a syscall name (it has a C prefix)", f'write "{match.group(1)}"'
    if name.lower() != name and syscalls.is_syscall(name.lower()):
        return (
            f"{quote(name)} is not a syscall name (syscall names are lower case)",
            f'write "{name.lower()}"',
        )
    if name.lower() in TOOL_ARTEFACTS:
        return f"{quote(name)} is {TOOL_ARTEFACTS[name.lower()]}, not a syscall", "remove it"
    near = NAME_FIXES.get(name)
    if near is None and ctx.suggestions_left > 0 and len(name) <= 64:  # no syscall name is longer
        ctx.suggestions_left -= 1
        near = suggest(name, sorted(syscalls.syscall_names()), cutoff=0.8)
    message = f"{quote(name)} is not a syscall known to libseccomp {syscalls.libseccomp_version()}"
    return message, (f'did you mean "{near}"?' if near else "remove it or check the spelling")


def _name_findings(name: str, path: str, ctx: Context) -> Iterator[Finding]:
    if name == "":
        yield _error(path, '"" is not a syscall name', "remove the empty string")
        return
    if not syscalls.is_syscall(name):
        if name in NEWER_SYSCALLS:
            yield _warning(
                path,
                f"{quote(name)} is newer than libseccomp {syscalls.libseccomp_version()}: it is not "
                "checked here, "
                "and runtimes whose libseccomp does not know it skip it",
            )
            return
        message, hint = _unknown_name(name, ctx)
        yield _error(path, message, hint)
        return
    if not ctx.checked_arches or name in ctx.arch_warned:
        return
    missing = [arch for arch in ctx.checked_arches if syscalls.resolve(name, arch) is None]
    if not missing:
        return
    ctx.arch_warned.add(name)  # once per name, at its first occurrence
    alternative = ARCH_ALTERNATIVES.get(name)
    hint = f'libcs use "{alternative}" there; add it if needed' if alternative else ""
    where = ", ".join(missing)
    if len(missing) == len(ctx.checked_arches):
        elsewhere = [a for a in syscalls.known_architectures() if syscalls.resolve(name, a) is not None][:4]
        yield _warning(
            path,
            f"{quote(name)} does not exist on {where}; it exists on {', '.join(elsewhere)}, so this entry "
            "has no effect",
            hint,
        )
    else:
        present = ", ".join(a for a in ctx.checked_arches if a not in missing)
        yield _warning(
            path,
            f"{quote(name)} exists only on {present} among the listed architectures, not on {where}",
            hint,
        )


@check
def _rule_names(ctx: Context) -> Iterator[Finding]:
    default = ctx.spec.default_action
    for rule, path in zip(ctx.spec.syscalls, ctx.rule_paths, strict=True):
        npath = join(path, "names")
        if not rule.names:
            if rule.action in ALLOWING_ACTIONS:
                why = "an allow rule without names allows nothing"
                if default in DENYING_DEFAULTS:
                    why += f"; with the {default} default no container can start"
            else:
                why = "the rule has no effect"
            yield _error(npath, f"the list is empty ({why})", "add syscall names or remove the rule")
            continue
        for j, name in enumerate(rule.names):
            if ctx.name_errors >= NAME_ERROR_LIMIT:  # bounded work for 100,000 wrong names
                yield _error(
                    f"{npath}[{j}]",
                    f"more than {NAME_ERROR_LIMIT} syscall names are wrong; the names from here on "
                    "are not checked",
                    "fix the names reported before this one first",
                )
                return
            for finding in _name_findings(name, f"{npath}[{j}]", ctx):
                ctx.name_errors += finding.severity is Severity.ERROR
                yield finding
            if rule.action == "SCMP_ACT_NOTIFY" and name == "write":
                yield _error(
                    f"{npath}[{j}]",
                    "write cannot be notified: the runtime hands the notification fd over with "
                    "write(), so it "
                    "would hang (runc refuses it)",
                    "remove write from the SCMP_ACT_NOTIFY rule",
                )


@check
def _conflicts(ctx: Context) -> Iterator[Finding]:
    first: dict[str, tuple[str, SyscallRule]] = {}
    for rule, path in zip(ctx.spec.syscalls, ctx.rule_paths, strict=True):
        if rule.args or rule.action not in syscalls.ACTIONS:
            continue
        mine = effective(rule.action, rule.errno_ret)
        for j, name in enumerate(rule.names):
            if name not in first:
                first[name] = (path, rule)
                continue
            other_path, other = first[name]
            if effective(other.action, other.errno_ret) != mine:
                shown = other.action + (
                    f" (errnoRet {other.errno_ret})" if other.errno_ret is not None else ""
                )
                yield _error(
                    f"{join(path, 'names')}[{j}]",
                    f"{quote(name)} is already in {other_path} with {shown}; libseccomp keeps the "
                    "first rule and "
                    "silently ignores this one",
                    "keep the syscall in one rule only",
                )


# --- whole profile -----------------------------------------------------------------------------


def _allowed_somewhere(spec: ProfileSpec) -> bool:
    return any(rule.action in ALLOWING_ACTIONS and rule.names for rule in spec.syscalls)


@check
def _deny_all(ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec
    if spec.default_action not in DENYING_DEFAULTS or _allowed_somewhere(spec):
        return
    if spec.default_action in KILLING_ACTIONS:
        message = (
            "no syscall is allowed and the default kills: every container using this profile is killed "
            "at start"
        )
    else:
        message = "no syscall is allowed: containers using this profile cannot start"
    yield _warning(
        ctx.path("defaultAction"), message, "fine for a test profile; otherwise allow the needed syscalls"
    )


@check
def _eperm_fallbacks(ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec
    if spec.default_action != "SCMP_ACT_ERRNO" or spec.default_errno_ret not in (None, errno.EPERM):
        return
    if not _allowed_somewhere(spec):
        return

    def handled(name: str) -> bool:
        return any(
            name in rule.names
            and (
                rule.action in ALLOWING_ACTIONS
                or (rule.action == "SCMP_ACT_ERRNO" and rule.errno_ret == errno.ENOSYS)
            )
            for rule in spec.syscalls
        )

    missing = [name for name in ("openat2", "clone3") if not handled(name)]
    if not missing:
        return
    what = 'neither "openat2" nor "clone3" is' if len(missing) == 2 else f'"{missing[0]}" is not'
    yield _warning(
        ctx.path("defaultAction"),
        f"default errno is EPERM and {what} allowed: newer runc (1.2.8+/1.3.3+) and glibc (>= 2.34) "
        "only fall back "
        "to older syscalls on ENOSYS, so containers may fail to start",
        "set defaultErrnoRet: 38 or allow/ENOSYS-deny those calls explicitly",
    )


# --- advice: infos only the offline tools show (``lint``) -------------------------------------------

#: Checks :func:`advise` runs: infos about a profile's effect that are not problems of the
#: profile itself (admission, the controller and the agent do not run them).  Extend with
#: :func:`advisory`.
ADVISORIES: list[Check] = []


def advisory(fn: Check) -> Check:
    """Register ``fn`` in :data:`ADVISORIES`."""
    ADVISORIES.append(fn)
    return fn


#: Syscalls that reach the same kernel operation; libcs pick one by version and architecture, so
#: denying one member leaves the operation reachable through the others (moby issue 22632: glibc's
#: ``chmod()`` calls ``fchmodat``; case 001).  A name may be in several families.
SYSCALL_FAMILIES: Final[tuple[tuple[str, ...], ...]] = (
    ("chmod", "fchmod", "fchmodat", "fchmodat2"),
    ("chown", "fchown", "lchown", "fchownat"),
    ("open", "creat", "openat", "openat2"),
    ("mkdir", "mkdirat"),
    ("unlink", "unlinkat"),
    ("rmdir", "unlinkat"),
    ("rename", "renameat", "renameat2"),
    ("link", "linkat"),
    ("symlink", "symlinkat"),
    ("mknod", "mknodat"),
    ("access", "faccessat", "faccessat2"),
    ("readlink", "readlinkat"),
    ("utime", "utimes", "futimesat", "utimensat"),
    ("execve", "execveat"),
    ("clone", "clone3"),
    ("fork", "vfork", "clone", "clone3"),
    ("dup2", "dup3"),
    ("pipe", "pipe2"),
    ("umount", "umount2"),
    ("mount", "fsopen", "fsconfig", "fsmount", "move_mount", "open_tree"),
    ("kill", "tkill", "tgkill"),
    ("wait4", "waitid"),
    ("epoll_wait", "epoll_pwait", "epoll_pwait2"),
    ("poll", "ppoll"),
    ("select", "pselect6"),
    ("getdents", "getdents64"),
)
_LIBC_EXAMPLES: Final[Mapping[str, str]] = {
    "chmod": "chmod(1) on current libcs calls fchmodat or fchmodat2",
    "chown": "chown(1) on current libcs calls fchownat",
    "open": "current libcs implement open() with openat",
    "unlink": "rm(1) on current libcs calls unlinkat",
    "rmdir": "rmdir(1) on current libcs calls unlinkat",
    "mkdir": "mkdir(1) on current libcs calls mkdirat",
    "clone": "glibc 2.34 and later try clone3 first",
    "fork": "libcs implement fork() with clone",
}


def _exists_where_checked(name: str, ctx: Context) -> bool:
    if ctx.checked_arches:
        return any(syscalls.resolve(name, arch) is not None for arch in ctx.checked_arches)
    return syscalls.is_syscall(name)


@advisory
def _families(ctx: Context) -> Iterator[Finding]:
    """Info: a deny-list denies some members of a syscall family but not the others."""
    spec = ctx.spec
    if spec.default_action not in ALLOWING_ACTIONS - {"SCMP_ACT_NOTIFY"}:
        return
    denied: dict[str, str] = {}
    for rule, path in zip(spec.syscalls, ctx.rule_paths, strict=True):
        if rule.args or rule.action not in syscalls.ACTIONS or rule.action in ALLOWING_ACTIONS:
            continue
        for j, name in enumerate(rule.names):
            denied.setdefault(name, f"{join(path, 'names')}[{j}]")
    if not denied:
        return
    for family in SYSCALL_FAMILIES:
        hit = [name for name in family if name in denied]
        if not hit:
            continue
        missing = [n for n in family if n not in denied and _exists_where_checked(n, ctx)]
        if not missing:
            continue
        shown = ", ".join(quote(n) for n in hit)
        others = ", ".join(quote(n) for n in missing)
        example = next((_LIBC_EXAMPLES[n] for n in hit if n in _LIBC_EXAMPLES), "")
        yield _info(
            denied[hit[0]],
            f"{shown} {'is' if len(hit) == 1 else 'are'} denied but not {others}, which reach the same "
            "operation: programs that use the sibling calls are not stopped"
            + (f" ({example})" if example else ""),
            f"deny {others} too if the operation must be blocked",
        )


@advisory
def _kill_thread(ctx: Context) -> Iterator[Finding]:
    """Info: ``SCMP_ACT_KILL`` is kill-thread (runc, libseccomp), not kill-process (case 008)."""
    message = (
        "SCMP_ACT_KILL kills only the calling thread (it is SCMP_ACT_KILL_THREAD); the process's other "
        "threads keep running, possibly in a broken state"
    )
    hint = "use SCMP_ACT_KILL_PROCESS to stop the whole process"
    if ctx.spec.default_action == "SCMP_ACT_KILL":
        yield _info(ctx.path("defaultAction"), message, hint)
    for rule, path in zip(ctx.spec.syscalls, ctx.rule_paths, strict=True):
        if rule.action == "SCMP_ACT_KILL":
            yield _info(join(path, "action"), message, hint)


def validate(
    spec: ProfileSpec,
    *,
    prefix: str = "spec",
    rule_paths: Sequence[str] | None = None,
    arch_paths: Sequence[str] | None = None,
) -> list[Finding]:
    """Check a parsed profile's meaning; never raises for a bad profile.

    Args:
        spec: the profile.
        prefix: path prefix of findings: ``spec`` for resources, ``""`` for bare JSON.
        rule_paths: path of each rule when they are not ``<prefix>.syscalls[i]`` (rules
            merged in from base profiles).
        arch_paths: path of each ``architectures`` entry, likewise.

    Returns:
        Findings in check order (see :data:`CHECKS`); errors mean the profile must not
        be written.
    """
    ctx = _context(spec, prefix, rule_paths, arch_paths)
    found: list[Finding] = []
    for fn in CHECKS:
        found.extend(fn(ctx))
    return found


def _context(
    spec: ProfileSpec, prefix: str, rule_paths: Sequence[str] | None, arch_paths: Sequence[str] | None
) -> Context:
    rules = (
        list(rule_paths)
        if rule_paths is not None
        else [f"{join(prefix, 'syscalls')}[{i}]" for i in range(len(spec.syscalls))]
    )
    arches = (
        list(arch_paths)
        if arch_paths is not None
        else [f"{join(prefix, 'architectures')}[{i}]" for i in range(len(spec.architectures))]
    )
    if len(rules) != len(spec.syscalls) or len(arches) != len(spec.architectures):
        raise ValueError("rule_paths/arch_paths must have one entry per rule/architecture")
    checked = tuple(dict.fromkeys(a for a in spec.architectures if syscalls.arch_known(a)))
    return Context(spec=spec, prefix=prefix, rule_paths=rules, arch_paths=arches, checked_arches=checked)


def advise(
    spec: ProfileSpec,
    *,
    prefix: str = "spec",
    rule_paths: Sequence[str] | None = None,
    arch_paths: Sequence[str] | None = None,
) -> list[Finding]:
    """Infos about a (parsed, possibly merged) profile's effect, for the offline tools.

    Same arguments as :func:`validate`; runs :data:`ADVISORIES` (syscall families whose
    members are denied only in part, ``SCMP_ACT_KILL`` meaning kill-thread).  Never
    raises for a bad profile; every finding is an info.
    """
    ctx = _context(spec, prefix, rule_paths, arch_paths)
    found: list[Finding] = []
    for fn in ADVISORIES:
        found.extend(fn(ctx))
    return found


def _covers(outer: str, inner: str) -> bool:
    if outer == "" or outer == inner:
        return True
    return inner.startswith(outer) and inner[len(outer)] in ".["


def combine(parse_findings: Iterable[Finding], validate_findings: Iterable[Finding]) -> list[Finding]:
    """Parse findings, then validate findings not about a field the parser already refused.

    A field the parser could not read is absent from the partial spec; validate would
    only repeat "missing" for it.
    """
    first = list(parse_findings)
    refused = [f.path for f in errors(first)]
    return first + [f for f in validate_findings if not any(_covers(p, f.path) for p in refused)]


def check_mapping(mapping: object, *, prefix: str = "spec") -> tuple[ProfileSpec | None, list[Finding]]:
    """Parse and validate a ``SeccompProfile`` ``spec``: every finding in one go.

    Returns:
        ``(spec, findings)``; ``spec`` is None when any finding is an error.
    """
    spec, found = parse_spec(mapping, prefix=prefix, partial=True)
    if spec is None:
        return None, found
    allfound = combine(found, validate(spec, prefix=prefix))
    return (None if errors(allfound) else spec), allfound


def check_profile_json(text: str | bytes) -> tuple[ProfileSpec | None, list[Finding]]:
    """Parse (strictly) and validate a bare profile JSON text; paths without ``spec.``.

    Returns:
        ``(spec, findings)``; ``spec`` is None when any finding is an error.
    """
    spec, found = parse_profile_json(text, partial=True)
    if spec is None:
        return None, found
    allfound = combine(found, validate(spec, prefix=""))
    return (None if errors(allfound) else spec), allfound


# --- files in other formats: what containerd would make of them -------------------------------------

_DOCKER_RULE_KEYS: Final = ("includes", "excludes", "comment")
_LIST_LIMIT: Final = 8


def _rule_names_raw(rule: Mapping[object, object]) -> list[str]:
    names = rule.get("names")
    out = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    legacy = rule.get("name")
    if isinstance(legacy, str) and legacy:
        out.append(legacy)
    return out


def _shorten(items: Sequence[str], limit: int = _LIST_LIMIT) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _strings(value: object) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


@dataclass
class _Conditional:
    """One Docker/moby condition of one rule: for messages about what containerd ignores."""

    path: str
    names: list[str]
    action: str
    values: list[str]

    def describe(self) -> str:
        return f"{_shorten(self.names, 5)} ({self.path}, {self.action or 'no action'})"


def foreign_format_findings(data: object, *, prefix: str = "") -> list[Finding]:
    """What the Docker/moby and CRI-O extensions of a profile JSON mean on containerd (case 009).

    Docker/moby (``github.com/moby/profiles`` ``seccomp``) and CRI-O/Podman (containers/common
    ``pkg/seccomp``) evaluate ``archMap``, ``includes``/``excludes`` (``caps``, ``arches``,
    ``minKernel``) and read ``comment``, ``defaultErrno`` and ``errno`` when they load a
    profile; containerd decodes a Localhost profile into the plain OCI struct
    (``contrib/seccomp/seccomp.go``) and silently drops those keys.  The parser already
    refuses the keys (:mod:`.spec`); these findings explain the effect on containerd:
    an empty ``architectures``, capability/arch/kernel-gated rules becoming unconditional,
    errno names falling back to EPERM.

    Args:
        data: the decoded JSON (anything; non-objects give no findings).
        prefix: path prefix of the findings (``""`` for a file).

    Returns:
        A warning naming the foreign keys (none when there are none), then one warning
        per kind of effect.  Never raises.
    """
    if not isinstance(data, Mapping):
        return []
    docker: list[str] = ["archMap"] if "archMap" in data else []
    crio: list[str] = ["defaultErrno"] if "defaultErrno" in data else []
    with_caps: list[_Conditional] = []
    without_caps: list[_Conditional] = []
    only_arches: list[_Conditional] = []
    not_arches: list[_Conditional] = []
    kernels: list[_Conditional] = []
    errno_names: list[str] = []
    restricted: set[str] = set()
    unconditional_by_caps: set[str] = set()
    rules = data.get("syscalls")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, Mapping):
            continue
        path = f"{join(prefix, 'syscalls')}[{i}]"
        docker.extend(key for key in _DOCKER_RULE_KEYS if key in rule and key not in docker)
        if "errno" in rule and "errno" not in crio:
            crio.append("errno")
        names = _rule_names_raw(rule)
        action = rule.get("action") if isinstance(rule.get("action"), str) else ""
        assert isinstance(action, str)
        if rule.get("args"):
            restricted.update(names)
        if isinstance(rule.get("errno"), str) and rule.get("errnoRet") is None:
            errno_names.append(f"{_shorten(names, 3)} ({path}, errno {quote(str(rule['errno']))})")
        for key, caps_list, arch_list in (
            ("includes", with_caps, only_arches),
            ("excludes", without_caps, not_arches),
        ):
            cond = rule.get(key)
            if not isinstance(cond, Mapping):
                continue
            cpath = join(path, key)
            if caps := _strings(cond.get("caps")):
                caps_list.append(_Conditional(join(cpath, "caps"), names, action, caps))
                if key == "includes" and action in ALLOWING_ACTIONS and not rule.get("args"):
                    unconditional_by_caps.update(names)
            if arches := _strings(cond.get("arches")):
                arch_list.append(_Conditional(join(cpath, "arches"), names, action, arches))
            if isinstance(cond.get("minKernel"), str):
                word = "at least" if key == "includes" else "below"
                kernels.append(
                    _Conditional(join(cpath, "minKernel"), names, action, [f"{word} {cond['minKernel']}"])
                )
    if not docker and not crio:
        return []

    found: list[Finding] = []
    keys = [quote(k) for k in docker] + [quote(k) for k in crio]
    owners = []
    if docker:
        owners.append("Docker/moby")
    if crio:
        owners.append("containers/common")
    found.append(
        _warning(
            prefix,
            f"{', '.join(keys)} {'is' if len(keys) == 1 else 'are'} not understood by containerd (its OCI "
            f"decoder drops {'it' if len(keys) == 1 else 'them'}) but interpreted by CRI-O and Podman "
            f"({' and '.join(owners)} format), so this file means different things on the two runtimes",
            'flatten it for one architecture and capability set: "seccomp-operator convert FILE --to json '
            '--arch amd64 [--caps CAP_...]" (or --to cr for a SeccompProfile)',
        )
    )
    arch_map = data.get("archMap")
    if isinstance(arch_map, list) and arch_map and not data.get("architectures"):
        subs: list[str] = []
        for entry in arch_map:
            if isinstance(entry, Mapping):
                subs.extend(s for s in _strings(entry.get("subArchitectures")) if s not in subs)
        found.append(
            _warning(
                join(prefix, "archMap"),
                'on containerd "architectures" is empty: only the node\'s native architecture is filtered'
                + (
                    f"; calls through the compat ABIs archMap would add ({_shorten(subs)}) are not handled "
                    "by these rules but by libseccomp's bad-architecture action"
                    if subs
                    else ""
                ),
                'list the architectures in "architectures" (convert does this for the chosen --arch)',
            )
        )

    def group(items: list[_Conditional]) -> str:
        by_values: dict[str, list[str]] = {}
        for item in items:
            by_values.setdefault(", ".join(item.values), []).append(item.describe())
        return "; ".join(f"{values}: {', '.join(rules)}" for values, rules in by_values.items())

    syscalls_path = join(prefix, "syscalls")
    if with_caps:
        widened = sorted(unconditional_by_caps & restricted)
        found.append(
            _warning(
                syscalls_path,
                "on containerd, rules meant only for containers WITH these capabilities apply to every "
                f"container, whatever its capabilities: {group(with_caps)}"
                + (
                    f"; {_shorten(widened)} then {'is' if len(widened) == 1 else 'are'} allowed without "
                    "the argument restrictions of the other rules"
                    if widened
                    else ""
                ),
                "with allow rules this is a privilege widening: convert for the capabilities the "
                "containers really have (--caps)",
            )
        )
    if without_caps:
        found.append(
            _warning(
                syscalls_path,
                "on containerd, rules meant only for containers WITHOUT these capabilities apply to every "
                f"container, also those granted them: {group(without_caps)}",
                "convert for the capabilities the containers really have (--caps)",
            )
        )
    if only_arches:
        found.append(
            _warning(
                syscalls_path,
                "on containerd, rules meant only for some architectures apply on every architecture: "
                f"{group(only_arches)}",
                "convert per architecture (--arch)",
            )
        )
    if not_arches:
        found.append(
            _warning(
                syscalls_path,
                "on containerd, rules meant to be skipped on some architectures apply there too: "
                f"{group(not_arches)}",
                "convert per architecture (--arch)",
            )
        )
    if kernels:
        found.append(
            _warning(
                syscalls_path,
                "on containerd, rules meant only for some kernel versions apply on every kernel: "
                f"{group(kernels)}",
                "convert for the nodes' kernel (--kernel)",
            )
        )
    default_errno = data.get("defaultErrno")
    if isinstance(default_errno, str) and data.get("defaultErrnoRet") is None:
        found.append(
            _warning(
                join(prefix, "defaultErrno"),
                f"on containerd the default returns EPERM (1), not {default_errno}: only CRI-O reads "
                "defaultErrno",
                "write defaultErrnoRet with the number (convert does this)",
            )
        )
    if errno_names:
        found.append(
            _warning(
                syscalls_path,
                "on containerd these rules return EPERM (1): only CRI-O reads the errno name: "
                + "; ".join(errno_names),
                "write errnoRet with the number (convert does this)",
            )
        )
    return found


# --- runtime start-up syscalls -------------------------------------------------------------------

RUNTIME_BASES_FILE: Final = "runtime-bases.json"


class RuntimeSpecError(ValueError):
    """A ``--runtime`` value that names no shipped runtime base list; the message says what exists."""


@dataclass(frozen=True, slots=True)
class RuntimeNote:
    """Why a runtime needs one syscall (``notes`` of ``data/runtime-bases.json``).

    Attributes:
        since: the releases that started to call it (``"1.2.8, 1.3.3, 1.4.0"``).
        why: what the runtime does with it, in the user's terms.
        fallback_on_enosys: the runtime falls back to another way when the call returns ENOSYS.
        severity: how bad its absence is (``warning``: start fails; ``info``: a slower fallback).
        sources: where the fact comes from (issues and pull requests).
    """

    since: str
    why: str
    fallback_on_enosys: bool
    severity: Severity
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuntimeBase:
    """The syscalls a runtime release needs after it has loaded a container's filter.

    Attributes:
        runtime: ``runc`` or ``crun``.
        requested: the version asked for (``"1.3.3"``; ``""`` for the newest).
        version: the key of the list used (the greatest not above ``requested``).
        syscalls: the names, sorted.
        architectures: the architectures the names were recorded on.
        notes: per-name explanations for the names newer releases added.
        source: provenance of the list (``_source`` of the file).
    """

    runtime: str
    requested: str
    version: str
    syscalls: tuple[str, ...]
    architectures: tuple[str, ...]
    notes: Mapping[str, RuntimeNote]
    source: str


def _version_key(text: str) -> tuple[int, int, int] | None:
    match = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+~].*)?$", text.strip())
    if not match:
        return None
    major, minor, micro = (int(g) if g else 0 for g in match.groups())
    return major, minor, micro


def runtime_bases() -> dict[str, Mapping[str, object]]:
    """The shipped lists, ``data/runtime-bases.json``, keyed by runtime name (``_source`` left out)."""
    import importlib.resources
    import json

    text = importlib.resources.files(__package__).joinpath("data", RUNTIME_BASES_FILE).read_text("utf-8")
    data = json.loads(text)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def runtime_base(value: str) -> RuntimeBase:
    """Resolve ``RUNTIME[@VERSION]`` (``runc@1.3.3``, ``runc@v1.1.5+ds1``, ``crun``) to a shipped list.

    A release uses the list of the greatest listed version not above it (missing version
    parts count as 0: ``1.3`` is ``1.3.0``); a release older than every list gets the
    oldest list; no version means the newest.  Lists and their provenance:
    ``data/runtime-bases.json``.

    Raises:
        RuntimeSpecError: unknown runtime or a version that is not ``X[.Y[.Z]]``, with a
            message listing what is known.
    """
    bases = runtime_bases()
    name, _, version = value.strip().partition("@")
    entry = bases.get(name.strip().lower())
    if not isinstance(entry, Mapping):
        raise RuntimeSpecError(
            f"no start-up syscall list for runtime {quote(name)}; known: {', '.join(sorted(bases))} "
            '(write e.g. "runc@1.3.3")'
        )
    versions = entry.get("versions")
    assert isinstance(versions, Mapping)
    keys = sorted(versions, key=lambda k: _version_key(k) or (0, 0, 0))
    if version:
        wanted = _version_key(version)
        if wanted is None:
            raise RuntimeSpecError(f"{quote(version)} is not a version such as 1.3.3")
        fitting = [k for k in keys if (_version_key(k) or (0, 0, 0)) <= wanted]
        chosen = fitting[-1] if fitting else keys[0]
    else:
        chosen = keys[-1]
    raw_notes = entry.get("notes")
    notes: dict[str, RuntimeNote] = {}
    for key, note in raw_notes.items() if isinstance(raw_notes, Mapping) else ():
        notes[key] = RuntimeNote(
            since=str(note.get("since", "")),
            why=str(note.get("why", "")),
            fallback_on_enosys=bool(note.get("fallbackOnENOSYS")),
            severity=Severity(note.get("severity", "warning")),
            sources=tuple(str(s) for s in note.get("sources", ())),
        )
    archs = entry.get("architectures")
    return RuntimeBase(
        runtime=name.strip().lower(),
        requested=version.strip(),
        version=chosen,
        syscalls=tuple(sorted(str(n) for n in versions[chosen])),  # type: ignore[attr-defined]
        architectures=tuple(str(a) for a in archs) if isinstance(archs, list) else (),
        notes=notes,
        source=str(entry.get("_source", "")),
    )


def _verdict(spec: ProfileSpec, name: str) -> tuple[bool, int | None]:
    """``(allowed, errno)`` of one syscall under ``spec``: first rule naming it, else the default.

    A conditional allow rule counts as allowing (whether its conditions hold is unknown here).
    """
    deny: SyscallRule | None = None
    for rule in spec.syscalls:
        if name not in rule.names:
            continue
        if rule.action in ALLOWING_ACTIONS:
            return True, None
        if deny is None and not rule.args:
            deny = rule
    if deny is not None:
        return False, effective(deny.action, deny.errno_ret)[1]
    if spec.default_action in ALLOWING_ACTIONS:
        return True, None
    return False, effective(spec.default_action, spec.default_errno_ret)[1]


def runtime_findings(spec: ProfileSpec, base: RuntimeBase, *, prefix: str = "spec") -> list[Finding]:
    """The runtime's start-up syscalls that ``spec`` (already merged with its bases) blocks (case 010).

    Only names that exist on the profile's architectures (or, without any, on this
    machine's) are checked.  A name the runtime falls back from on ENOSYS is not missing
    when the profile returns ENOSYS for it.  Names with a note are grouped by it (warning,
    or info where the runtime has a fallback for any error); the others, recorded in the
    list but not explained by a note, are one info.

    Returns:
        Findings at ``<prefix>.syscalls``; empty when nothing is missing.
    """
    arches = [a for a in spec.architectures if syscalls.arch_known(a)] or [syscalls.native_arch()]
    missing: list[str] = []
    for name in base.syscalls:
        if not any(syscalls.resolve(name, arch) is not None for arch in arches):
            continue
        allowed, errno_ret = _verdict(spec, name)
        note = base.notes.get(name)
        if allowed or (note is not None and note.fallback_on_enosys and errno_ret == errno.ENOSYS):
            continue
        missing.append(name)
    if not missing:
        return []
    label = f"{base.runtime} {base.requested or base.version}"
    path = join(prefix, "syscalls")
    found: list[Finding] = []
    if base.requested and base.version != base.requested:
        wanted, used = _version_key(base.requested), _version_key(base.version)
        if wanted is not None and used is not None and wanted < used:
            found.append(
                _info(path, f"no start-up list for {label}; the oldest one ({base.version}) is used instead")
            )
    eperm_default = spec.default_action == "SCMP_ACT_ERRNO" and spec.default_errno_ret in (None, errno.EPERM)
    groups: dict[tuple[str, str, Severity], list[str]] = {}
    plain: list[str] = []
    for name in missing:
        note = base.notes.get(name)
        if note is None:
            plain.append(name)
        else:
            groups.setdefault((note.why, note.since, note.severity), []).append(name)
    for (why, since, severity), names in sorted(
        groups.items(), key=lambda kv: kv[0][2] is not Severity.WARNING
    ):
        shown = ", ".join(quote(n) for n in names)
        them = "it" if len(names) == 1 else "them"
        fallback = all(base.notes[n].fallback_on_enosys for n in names)
        if severity is Severity.WARNING:
            message = (
                f"runtime start-up syscalls missing for {label}: {shown} ({why}; since {base.runtime} "
                f'{since}); container start fails with "operation not permitted"'
            )
        else:
            message = f"{label} calls {shown} at start-up, which this profile blocks ({why}; since {since})"
        hint = f"allow {them} in an SCMP_ACT_ALLOW rule"
        if fallback and eperm_default:
            hint += f"; or set defaultErrnoRet: 38 (ENOSYS), so that {base.runtime} falls back"
        found.append(Finding(severity, path, message, hint))
    if plain:
        found.append(
            _info(
                path,
                f"the {base.runtime} {base.version} start-up list also has "
                f"{_shorten([quote(n) for n in plain])}, which this profile blocks; the runtime may call "
                "them depending on timing and configuration",
                "allow them, or build on a base profile that has them",
            )
        )
    return found
