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

#: Syscalls added in Linux 6.8–6.17 (kernel ``arch/x86/entry/syscalls/syscall_64.tbl``) that
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
    near = NAME_FIXES.get(name) or suggest(name, sorted(syscalls.syscall_names()), cutoff=0.8)
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
            yield from _name_findings(name, f"{npath}[{j}]", ctx)
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
    ctx = Context(spec=spec, prefix=prefix, rule_paths=rules, arch_paths=arches, checked_arches=checked)
    found: list[Finding] = []
    for fn in CHECKS:
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
