"""``seccomp-operator convert``: other profile formats to plain OCI, for one node and container.

Inputs (detected from the content):

- **Docker/moby JSON** (``github.com/moby/profiles`` ``seccomp/default.json``): ``archMap``,
  rules with ``includes``/``excludes`` on ``caps``, ``arches`` and ``minKernel``, the legacy
  singular ``name``, ``comment``;
- **CRI-O/Podman JSON** (containers/common ``pkg/seccomp/seccomp.json``): the same plus
  ``defaultErrno`` and per-rule ``errno`` (errno *names*);
- **SeccompProfile YAML/JSON** of the security-profiles-operator (``v1beta1`` and ``v1``
  of ``security-profiles-operator.x-k8s.io``) or ours; a ``baseProfileName`` found in the
  same file is merged in;
- plain OCI ``linux.seccomp`` JSON (passed through the normal form).

Docker and CRI-O evaluate the conditions per container when they load the file
(moby ``seccomp/seccomp_linux.go`` ``setupSeccomp``, containers/common
``pkg/seccomp/seccomp_linux.go``); containerd reads a Localhost profile as plain OCI JSON and
drops them, so capability-gated rules become unconditional (case 009).  :func:`flatten`
evaluates them once, the way moby does, for a :class:`Target`:

- ``architectures`` is the ``archMap`` entry of the target arch plus its sub-architectures
  (both ``archMap`` and ``architectures`` set is an error, as in moby and CRI-O);
- a rule is left out if ``excludes.arches`` holds the target's libseccomp arch name
  (``amd64``, ``arm64``, ``x86``…), if ``excludes.caps`` holds any capability the container
  has, or if the kernel is at least ``excludes.minKernel``; it is also left out unless
  ``includes.arches`` holds the arch, unless the container has every capability in
  ``includes.caps``, and unless the kernel is at least ``includes.minKernel``;
- kernel versions compare as ``major.minor`` only (moby ``kernel_linux.go``);
- ``defaultErrno``/``errno`` names become ``defaultErrnoRet``/``errnoRet`` numbers (Linux
  values from Python's :mod:`errno`); a name that contradicts the number is an error.

The container's capabilities (the bounding set moby compares against) are the runtime's
defaults (:data:`DEFAULT_CAPABILITIES`, what containerd and Docker give a container without
``--cap-add``) plus ``--caps``, or only ``--caps`` with ``--no-default-caps``.  The kernel is
``--kernel X.Y``, by default the running one (``platform.release()``).

The result goes through :func:`.render.render_profile_json` (strict parse, validation,
normal form, libseccomp compile), so what is printed is exactly what the operator would
write on a node and means the same on containerd, CRI-O, runc and crun.  Note the normal
form merges rules with the same ``(action, errnoRet, args)``: compare converted profiles by
names per ``(action, errnoRet, args)``, not rule by rule.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from . import constants as c
from . import inputs, paths, syscalls
from . import render as render_mod
from .findings import Finding, ProfileError, Severity, errors
from .spec import decode_json, describe, errno_number, join, quote, suggest
from .validate import effective

#: Capabilities containerd and Docker give a container that adds none (containerd
#: ``oci/spec_opts.go`` default Unix capabilities; moby ``oci/caps/defaults.go``).
DEFAULT_CAPABILITIES: Final[tuple[str, ...]] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

#: Every Linux capability (capabilities(7), Linux 5.9+), for checking ``--caps``.
CAPABILITIES: Final[tuple[str, ...]] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

#: Go architecture names (``GOARCH``, what Kubernetes nodes report as ``kubernetes.io/arch``) →
#: (OCI arch, libseccomp arch name used in ``includes``/``excludes.arches``), after moby's
#: ``goToNative``/``nativeToSeccomp`` tables.
GO_ARCHES: Final[Mapping[str, tuple[str, str]]] = {
    "amd64": ("SCMP_ARCH_X86_64", "amd64"),
    "386": ("SCMP_ARCH_X86", "x86"),
    "arm64": ("SCMP_ARCH_AARCH64", "arm64"),
    "arm": ("SCMP_ARCH_ARM", "arm"),
    "loong64": ("SCMP_ARCH_LOONGARCH64", "loongarch64"),
    "mips": ("SCMP_ARCH_MIPS", "mips"),
    "mipsle": ("SCMP_ARCH_MIPSEL", "mipsel"),
    "mips64": ("SCMP_ARCH_MIPS64", "mips64"),
    "mips64le": ("SCMP_ARCH_MIPSEL64", "mipsel64"),
    "mips64p32": ("SCMP_ARCH_MIPS64N32", "mips64n32"),
    "mips64p32le": ("SCMP_ARCH_MIPSEL64N32", "mipsel64n32"),
    "ppc": ("SCMP_ARCH_PPC", "ppc"),
    "ppc64": ("SCMP_ARCH_PPC64", "ppc64"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
    "s390": ("SCMP_ARCH_S390", "s390"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
}
_ARCH_ALIASES: Final[Mapping[str, str]] = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armhf": "arm",
    "loongarch64": "loong64",
    "mipsel": "mipsle",
    "mipsel64": "mips64le",
}

#: Warnings printed by ``convert`` in text mode without ``-v``.
MAX_SHOWN: Final = 10
_FILTER_KEYS: Final = ("caps", "arches", "minKernel")
_MOBY_RULE_KEYS: Final = ("includes", "excludes", "comment")
_KERNEL = re.compile(r"^(\d+)\.(\d+)")
_RULE_PATH = re.compile(r"^syscalls\[(\d+)\]")


class ConvertError(Exception):
    """Nothing can be converted; ``findings`` says why (at least one error)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(str(f) for f in self.findings))


def _fail(message: str, path: str = "", hint: str = "") -> ConvertError:
    return ConvertError([Finding(Severity.ERROR, path, message, hint)])


@dataclass(frozen=True, slots=True)
class Target:
    """The node and container a Docker/CRI-O profile is evaluated for.

    Attributes:
        arch: Go architecture name (``amd64``); see :data:`GO_ARCHES`.
        caps: the container's capabilities (``CAP_*``), its bounding set.
        kernel: ``(major, minor)`` of the node's kernel.
        default_caps: ``caps`` started from :data:`DEFAULT_CAPABILITIES` (for messages).
        added_caps: the capabilities asked for on top (for messages), in input order.
    """

    arch: str
    caps: frozenset[str]
    kernel: tuple[int, int]
    default_caps: bool = True
    added_caps: tuple[str, ...] = ()

    @property
    def oci_arch(self) -> str:
        """The OCI name of :attr:`arch` (``SCMP_ARCH_X86_64``)."""
        return GO_ARCHES[self.arch][0]

    @property
    def seccomp_arch(self) -> str:
        """libseccomp's name of :attr:`arch` as ``includes``/``excludes.arches`` spell it (``x86``)."""
        return GO_ARCHES[self.arch][1]

    def describe(self) -> str:
        """``amd64, capabilities: runtime defaults + CAP_SYS_PTRACE, kernel 6.1``."""
        if self.default_caps:
            caps = "runtime defaults" + (f" + {', '.join(self.added_caps)}" if self.added_caps else "")
        else:
            caps = ", ".join(self.added_caps) if self.added_caps else "none"
        return f"{self.arch}, capabilities: {caps}, kernel {self.kernel[0]}.{self.kernel[1]}"


def parse_arch(text: str) -> str:
    """A Go architecture name from ``amd64``, ``x86_64``, ``aarch64``, ``SCMP_ARCH_X86_64``…

    Raises:
        ConvertError: not an architecture, with the known names.
    """
    value = text.strip()
    lowered = value.lower()
    if lowered in GO_ARCHES:
        return lowered
    if lowered in _ARCH_ALIASES:
        return _ARCH_ALIASES[lowered]
    for go, (oci, _) in GO_ARCHES.items():
        if value.upper() == oci:
            return go
    near = suggest(lowered, [*GO_ARCHES, *_ARCH_ALIASES], cutoff=0.8)
    hint = f'did you mean "{_ARCH_ALIASES.get(near, near)}"?' if near else "one of: " + ", ".join(GO_ARCHES)
    raise _fail(f"--arch {quote(text)} is not an architecture", hint=hint)


def host_arch() -> str:
    """The Go architecture name of this machine (from libseccomp's native arch)."""
    native = syscalls.native_arch()
    return next(go for go, (oci, _) in GO_ARCHES.items() if oci == native)


def parse_caps(values: Sequence[str]) -> tuple[str, ...]:
    """Capability names from ``--caps`` values (comma-separated, ``CAP_`` prefix optional, ``ALL``).

    Raises:
        ConvertError: an unknown capability, with a did-you-mean.
    """
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            raw = item.strip()
            if not raw:
                continue
            upper = raw.upper()
            if upper == "ALL":
                out.extend(cap for cap in CAPABILITIES if cap not in out)
                continue
            cap = upper if upper.startswith("CAP_") else f"CAP_{upper}"
            if cap not in CAPABILITIES:
                near = suggest(cap, CAPABILITIES)
                raise _fail(
                    f"--caps: {quote(raw)} is not a Linux capability (capabilities(7))",
                    hint=f'did you mean "{near}"?' if near else "e.g. CAP_SYS_PTRACE",
                )
            if cap not in out:
                out.append(cap)
    return tuple(out)


def parse_kernel(text: str) -> tuple[int, int]:
    """``(major, minor)`` of a kernel release (``6.1``, ``5.15.0-91-generic``), as moby reads it.

    Raises:
        ConvertError: the text does not start with ``<major>.<minor>``.
    """
    match = _KERNEL.match(text.strip())
    if not match:
        raise _fail(f"--kernel {quote(text)} is not a kernel version", hint='write e.g. "6.1"')
    return int(match.group(1)), int(match.group(2))


def make_target(
    arch: str | None = None,
    caps: Sequence[str] = (),
    *,
    default_caps: bool = True,
    kernel: str | None = None,
) -> Target:
    """A :class:`Target` from command-line values; None means this machine's arch/kernel.

    Raises:
        ConvertError: a bad arch, capability or kernel version.
    """
    added = parse_caps(caps)
    base = set(DEFAULT_CAPABILITIES) if default_caps else set()
    return Target(
        arch=parse_arch(arch) if arch else host_arch(),
        caps=frozenset(base | set(added)),
        kernel=parse_kernel(kernel if kernel is not None else platform.release()),
        default_caps=default_caps,
        added_caps=added,
    )


# --- flattening a Docker/moby or CRI-O JSON ------------------------------------------------------


@dataclass
class Flattened:
    """A Docker/CRI-O profile evaluated for one :class:`Target`.

    Attributes:
        data: the OCI-shaped mapping (unknown keys kept, so that the parser reports them).
        sources: ``sources[i]`` is the index in the input of the output's ``syscalls[i]``.
        findings: what the evaluation found (paths of the input).
    """

    data: dict[str, Any]
    sources: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _errno_value(
    name: object, number: object, name_path: str, number_path: str
) -> tuple[int | None, Finding]:
    """The errno a CRI-O errno name stands for, and a finding (error when it cannot be used)."""
    if not isinstance(name, str):
        return None, Finding(Severity.ERROR, name_path, f"got {describe(name)}; an errno name such as EPERM")
    value = errno_number(name)
    if value is None:
        return None, Finding(
            Severity.ERROR, name_path, f"{quote(name)} is not an errno name", "e.g. EPERM (1) or ENOSYS (38)"
        )
    if number is not None and number != value:
        return None, Finding(
            Severity.ERROR,
            name_path,
            f"{quote(name)} is {value}, but {number_path.rsplit('.', 1)[-1]} says {number!r}; CRI-O uses the "
            "number, containerd too",
            "keep one of them",
        )
    return value, Finding(
        Severity.INFO, name_path, f"errno name {quote(name)} written as the number {value}", ""
    )


def _filter(value: object, path: str, found: list[Finding]) -> dict[str, Any] | None:
    """A checked ``includes``/``excludes`` object; None when absent or refused."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        found.append(Finding(Severity.ERROR, path, f"got {describe(value)}; an object is expected"))
        return None
    out: dict[str, Any] = {}
    for key, item in value.items():
        kpath = join(path, str(key))
        if key not in _FILTER_KEYS:
            near = suggest(str(key), _FILTER_KEYS)
            found.append(
                Finding(
                    Severity.ERROR,
                    kpath,
                    f"{quote(str(key))} is not a condition Docker or CRI-O knows",
                    f'did you mean "{near}"?' if near else "caps, arches or minKernel",
                )
            )
        elif key == "minKernel":
            if item in (None, ""):
                continue
            if not isinstance(item, str) or not re.fullmatch(r"\d+\.\d+", item) or item in ("0.0",):
                found.append(
                    Finding(Severity.ERROR, kpath, f'got {describe(item)}; a kernel version such as "4.8"')
                )
                continue
            major, minor = item.split(".")
            out[key] = (int(major), int(minor))
        elif item is None:
            continue
        elif not isinstance(item, list) or not all(isinstance(x, str) for x in item):
            found.append(
                Finding(Severity.ERROR, kpath, f"got {describe(item)}; a list of strings is expected")
            )
        else:
            if key == "caps":
                for k, cap in enumerate(item):
                    if cap not in CAPABILITIES:
                        found.append(
                            Finding(
                                Severity.WARNING,
                                f"{kpath}[{k}]",
                                f"{quote(cap)} is not a Linux capability; no container has it",
                            )
                        )
            out[key] = list(item)
    return out


def _skip_reason(includes: Mapping[str, Any] | None, excludes: Mapping[str, Any] | None, t: Target) -> str:
    """Why moby leaves a rule out for ``t`` (``""``: it is kept); same order as moby's ``setupSeccomp``."""
    if excludes:
        if t.seccomp_arch in excludes.get("arches", ()):
            return f"excluded on {t.seccomp_arch}"
        held = [cap for cap in excludes.get("caps", ()) if cap in t.caps]
        if held:
            return f"excluded for containers with {held[0]}"
        if "minKernel" in excludes and t.kernel >= excludes["minKernel"]:
            return "excluded from kernel {}.{} on".format(*excludes["minKernel"])
    if includes:
        arches = includes.get("arches")
        if arches and t.seccomp_arch not in arches:
            return f"only on {', '.join(arches)}"
        lacking = [cap for cap in includes.get("caps", ()) if cap not in t.caps]
        if lacking:
            return f"needs {', '.join(lacking)}"
        if "minKernel" in includes and t.kernel < includes["minKernel"]:
            return "needs kernel {}.{} or later".format(*includes["minKernel"])
    return ""


def flatten(data: Mapping[str, Any], target: Target) -> Flattened:
    """Evaluate a Docker/moby or CRI-O profile's conditions for ``target`` (see the module docstring).

    Shape of ``data``: the decoded JSON object.  Keys this module does not interpret are
    kept, so that :func:`.spec.parse_profile` reports them with a did-you-mean.  Never
    raises; problems are findings with the input's paths.
    """
    found: list[Finding] = []
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in ("archMap", "defaultErrno", "syscalls")}

    arch_map = data.get("archMap")
    if arch_map is not None:
        if data.get("architectures"):
            found.append(
                Finding(
                    Severity.ERROR,
                    "archMap",
                    'both "architectures" and "archMap" are set; Docker and CRI-O refuse such a profile',
                    "keep one of them",
                )
            )
        elif not isinstance(arch_map, list):
            found.append(Finding(Severity.ERROR, "archMap", f"got {describe(arch_map)}; a list is expected"))
        else:
            for i, entry in enumerate(arch_map):
                epath = f"archMap[{i}]"
                if not isinstance(entry, Mapping) or not isinstance(entry.get("architecture"), str):
                    found.append(
                        Finding(
                            Severity.ERROR,
                            epath,
                            'each entry is {"architecture": "SCMP_ARCH_...", "subArchitectures": [...]}',
                        )
                    )
                    continue
                if entry["architecture"] == target.oci_arch:
                    subs = entry.get("subArchitectures") or []
                    if not isinstance(subs, list):
                        found.append(
                            Finding(Severity.ERROR, join(epath, "subArchitectures"), "a list is expected")
                        )
                        subs = []
                    out["architectures"] = [target.oci_arch, *subs]
                    break
            else:
                found.append(
                    Finding(
                        Severity.WARNING,
                        "archMap",
                        f"no entry for {target.oci_arch} ({target.arch}): the result lists no architectures, "
                        "so only the node's native one is filtered (as Docker and CRI-O would do)",
                    )
                )

    if "defaultErrno" in data:
        number = data.get("defaultErrnoRet")
        value, note = _errno_value(data["defaultErrno"], number, "defaultErrno", "defaultErrnoRet")
        found.append(note)
        if value is not None and number is None:
            out["defaultErrnoRet"] = value

    rules = data.get("syscalls")
    sources: list[int] = []
    dropped: list[str] = []
    comments = 0
    if isinstance(rules, list):
        kept: list[Any] = []
        for i, rule in enumerate(rules):
            path = f"syscalls[{i}]"
            if not isinstance(rule, Mapping):
                kept.append(rule)  # the parser says what is wrong with it
                sources.append(i)
                continue
            includes = _filter(rule.get("includes"), join(path, "includes"), found)
            excludes = _filter(rule.get("excludes"), join(path, "excludes"), found)
            comments += "comment" in rule
            reason = _skip_reason(includes, excludes, target)
            if reason:
                raw_names = rule.get("names")
                names: list[Any] = raw_names if isinstance(raw_names, list) else [rule.get("name")]
                shown = ", ".join(str(n) for n in names[:4]) + (" ..." if len(names) > 4 else "")
                dropped.append(f"{path} ({shown}: {reason})")
                continue
            entry = {k: v for k, v in rule.items() if k not in (*_MOBY_RULE_KEYS, "errno")}
            if "errno" in rule:
                value, note = _errno_value(
                    rule["errno"], rule.get("errnoRet"), join(path, "errno"), join(path, "errnoRet")
                )
                if note.severity is not Severity.INFO:
                    found.append(note)
                if value is not None and rule.get("errnoRet") is None:
                    entry["errnoRet"] = value
            kept.append(entry)
            sources.append(i)
        out["syscalls"] = kept
    elif rules is not None:
        out["syscalls"] = rules
    _drop_shadowed(out, sources, found)
    if dropped:
        found.append(
            Finding(
                Severity.INFO,
                "syscalls",
                f"{len(dropped)} rule(s) left out for {target.describe()}: " + "; ".join(dropped),
            )
        )
    if comments:
        found.append(Finding(Severity.INFO, "syscalls", f'{comments} "comment" key(s) dropped'))
    return Flattened(data=out, sources=sources, findings=found)


def _effect(action: object, errno_ret: object) -> tuple[str, int | None] | None:
    if not isinstance(action, str) or action not in syscalls.ACTIONS:
        return None
    if errno_ret is not None and (not isinstance(errno_ret, int) or isinstance(errno_ret, bool)):
        return None
    return effective(action, errno_ret)


def _drop_shadowed(out: dict[str, Any], sources: list[int], found: list[Finding]) -> None:
    """Remove names a runtime ignores: a later unconditional rule for a syscall that has one already.

    libseccomp keeps the first unconditional rule for a syscall and silently ignores later
    ones with another action (runc and crun add rules in file order and skip rules whose
    action is the default's).  After flattening, such pairs happen in real files: the
    containers/common default allows ``setns`` and, for containers without CAP_SYS_ADMIN,
    also denies it.  The converted profile keeps what the runtime applies and says so;
    the validator refuses such pairs in hand-written profiles.
    """
    rules = out.get("syscalls")
    default = _effect(out.get("defaultAction"), out.get("defaultErrnoRet"))
    if not isinstance(rules, list) or default is None:
        return
    first: dict[str, tuple[int, tuple[str, int | None], str]] = {}
    shadowed: list[str] = []
    keep: list[int] = []
    for k, rule in enumerate(rules):
        names = rule.get("names") if isinstance(rule, Mapping) else None
        effect = _effect(rule.get("action"), rule.get("errnoRet")) if isinstance(rule, Mapping) else None
        if not isinstance(names, list) or effect is None or rule.get("args") or effect == default:
            keep.append(k)
            continue
        left = []
        for name in names:
            seen = first.get(name) if isinstance(name, str) else None
            if seen is None:
                if isinstance(name, str):
                    first[name] = (sources[k], effect, str(rule.get("action")))
                left.append(name)
            elif seen[1] == effect:
                left.append(name)
            else:
                where = f"syscalls[{sources[k]}] ({rule.get('action')})"
                shadowed.append(f"{name} in {where} by syscalls[{seen[0]}] ({seen[2]})")
        if left or not names:
            rule["names"] = left
            keep.append(k)
    if not shadowed:
        return
    out["syscalls"] = [rules[k] for k in keep]
    sources[:] = [sources[k] for k in keep]
    found.append(
        Finding(
            Severity.WARNING,
            "syscalls",
            "rules that runtimes ignore were left out (libseccomp keeps the first unconditional rule for a "
            "syscall): " + "; ".join(shadowed),
            "if the later rule was meant to win, move it before the other one in the source",
        )
    )


def _remap(findings: Sequence[Finding], sources: Sequence[int]) -> list[Finding]:
    """Findings about the flattened rules, renamed to the input's rule indexes."""
    out: list[Finding] = []
    for f in findings:
        match = _RULE_PATH.match(f.path)
        if match and int(match.group(1)) < len(sources):
            path = f"syscalls[{sources[int(match.group(1))]}]" + f.path[match.end() :]
            out.append(Finding(f.severity, path, f.message, f.hint))
        else:
            out.append(f)
    return out


# --- whole files -------------------------------------------------------------------------------------


def detect_format(data: Mapping[str, Any]) -> str:
    """``containers-common``, ``docker`` or ``oci`` for a decoded profile JSON object."""
    rules = (
        [r for r in data.get("syscalls") or () if isinstance(r, Mapping)]
        if isinstance(data.get("syscalls"), list)
        else []
    )
    if "defaultErrno" in data or any("errno" in r for r in rules):
        return "containers-common"
    if "archMap" in data or any(any(k in r for k in (*_MOBY_RULE_KEYS, "name")) for r in rules):
        return "docker"
    return "oci"


@dataclass(frozen=True, slots=True)
class Converted:
    """The result of :func:`convert_file`.

    Attributes:
        rendered: the node file (normal form) and its findings.
        findings: every non-error finding, conversion first.
        source_format: ``docker``, ``containers-common``, ``oci`` or the apiVersion of a resource.
        name: the profile's name (from the resource, else from the file name).
        target: what the conditions were evaluated for.
    """

    rendered: render_mod.Rendered
    findings: tuple[Finding, ...]
    source_format: str
    name: str
    target: Target


def _name_from_file(path: str) -> str:
    stem = Path(path).name
    for suffix in (".json", ".yaml", ".yml"):
        stem = stem.removesuffix(suffix)
    name = re.sub(r"[^a-z0-9.-]+", "-", stem.lower()).strip("-.")
    return name or "converted"


def convert_file(path: str, target: Target, *, name: str | None = None) -> Converted:
    """Read ``path`` (any format of the module docstring) and flatten it for ``target``.

    Args:
        path: the file.
        target: arch, capabilities and kernel the Docker/CRI-O conditions are evaluated for
            (ignored for resources and plain OCI JSON, which have none).
        name: which SeccompProfile of a multi-document file.

    Returns:
        The :class:`Converted` profile.

    Raises:
        ConvertError: unreadable input, or errors (all findings, errors first).
    """
    try:
        loaded = inputs.load_file(path)
    except inputs.InputError as e:
        raise ConvertError(e.findings) from None
    if loaded.text is None:
        return _convert_resource(loaded, target, name)
    data, decoded = decode_json(loaded.text)
    if not isinstance(data, Mapping):
        # let the strict reader explain the shape
        try:
            render_mod.render_profile_json(loaded.text)
        except ProfileError as e:
            raise ConvertError(e.findings) from None
        raise _fail("the file holds no profile object")  # pragma: no cover - render refuses non-objects
    fmt = detect_format(data)
    flat = flatten(data, target)
    if errors(flat.findings):
        raise ConvertError(sorted(flat.findings, key=lambda f: f.severity is not Severity.ERROR))
    try:
        rendered = render_mod.render_profile_json(json.dumps(flat.data))
    except ProfileError as e:
        raise ConvertError([*flat.findings, *_remap(e.findings, flat.sources)]) from None
    own = _remap(rendered.findings, flat.sources)
    return Converted(
        rendered=rendered,
        findings=(*decoded, *flat.findings, *own),
        source_format=fmt,
        name=name or _name_from_file(path),
        target=target,
    )


def _convert_resource(loaded: inputs.Loaded, target: Target, name: str | None) -> Converted:
    if name is None and len(loaded.resources) > 1:
        names = ", ".join(sorted(loaded.resources))
        raise _fail(f"{loaded.path} holds several profiles ({names})", hint="choose one with --source-name")
    try:
        rendered = inputs.render_one(loaded, name=name)
    except inputs.InputError as e:
        raise ConvertError(e.findings) from None
    chosen = name or next(iter(loaded.resources))
    doc = loaded.resources[chosen]
    found: list[Finding] = []
    spec = doc.get("spec")
    base = spec.get("baseProfileName") if isinstance(spec, Mapping) else None
    if base:
        found.append(
            Finding(Severity.INFO, "spec.baseProfileName", f"base profile {quote(str(base))} merged in")
        )
    return Converted(
        rendered=rendered,
        findings=(*found, *rendered.findings),
        source_format=str(doc.get("apiVersion", "")),
        name=chosen,
        target=target,
    )


def to_resource(document: Mapping[str, Any], name: str, namespace: str | None = None) -> dict[str, Any]:
    """A ``SeccompProfile`` resource (our API) whose ``spec`` is ``document`` (an OCI object).

    Raises:
        ConvertError: ``name`` or ``namespace`` is not a DNS subdomain.
    """
    try:
        paths.check_component(name, "name")
        if namespace is not None:
            paths.check_component(namespace, "namespace")
    except paths.UnsafeNameError as e:
        raise _fail(str(e), hint="use lower-case letters, digits, - and .") from None
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": c.API_VERSION, "kind": c.PROFILE_KIND, "metadata": metadata, "spec": dict(document)}


def dump_resource(resource: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """YAML text of a resource, keys in their given order, with ``# `` header lines."""
    body = yaml.safe_dump(dict(resource), sort_keys=False, default_flow_style=False, width=100)
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + body


def header_lines(converted: Converted, source: str) -> list[str]:
    """The comment put above a converted resource: where it came from and for what."""
    lines = [f"Converted by seccomp-operator convert from {Path(source).name} ({converted.source_format})"]
    if converted.source_format in ("docker", "containers-common"):
        lines.append(f"for {converted.target.describe()}")
    return lines


# --- CLI ------------------------------------------------------------------------------------------


def _print_findings(findings: Sequence[Finding], output: str) -> None:
    if output == "json":
        print(json.dumps([f.as_dict() for f in findings], indent=2), file=sys.stderr)
    else:
        for f in findings:
            print(str(f), file=sys.stderr)


def cmd_convert(args: argparse.Namespace) -> int:
    """``seccomp-operator convert``: print the flattened profile (``--to json``) or resource (``--to cr``)."""
    from .cli import EXIT_ERRORS, EXIT_OK, EXIT_WARNINGS

    try:
        target = make_target(
            args.arch, args.caps or (), default_caps=not args.no_default_caps, kernel=args.kernel
        )
        converted = convert_file(args.file, target, name=args.source_name)
        if args.to == "cr":
            resource = to_resource(converted.rendered.document, args.name or converted.name, args.namespace)
            text = dump_resource(resource, header_lines(converted, args.file))
    except ConvertError as e:
        _print_findings(sorted(e.findings, key=lambda f: f.severity is not Severity.ERROR), args.output)
        return EXIT_ERRORS
    shown = [f for f in converted.findings if f.severity is not Severity.INFO or args.verbose]
    if args.output == "text" and not args.verbose and len(shown) > MAX_SHOWN:
        rest = len(shown) - MAX_SHOWN
        _print_findings(shown[:MAX_SHOWN], args.output)
        print(f"... and {rest} more warnings (-v shows them all; lint explains the file)", file=sys.stderr)
    else:
        _print_findings(shown, args.output)
    if args.to == "json":
        sys.stdout.buffer.write(converted.rendered.content)
    else:
        sys.stdout.write(text)
    sys.stdout.flush()
    warned = any(f.severity is Severity.WARNING for f in converted.findings)
    return EXIT_WARNINGS if args.strict and warned else EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``convert`` to the ``seccomp-operator`` command (see :mod:`.cli`)."""
    p = subparsers.add_parser(
        "convert",
        help="flatten a Docker/moby, CRI-O or SPO profile into plain OCI JSON or a SeccompProfile",
        description=(
            "Evaluate Docker/CRI-O conditions (archMap, includes/excludes on caps, arches, minKernel) "
            "for one architecture, capability set and kernel, and print the result in the normal form "
            "the operator writes on nodes (--to json) or as a SeccompProfile resource (--to cr)."
        ),
    )
    p.add_argument(
        "file", help="profile JSON (Docker/moby, CRI-O/containers-common, OCI) or SeccompProfile YAML"
    )
    p.add_argument(
        "--to", choices=("cr", "json"), required=True, help="output: SeccompProfile YAML or node JSON"
    )
    p.add_argument(
        "--arch",
        help="node architecture (Go name: amd64, arm64, ...; also x86_64, aarch64, SCMP_ARCH_*); "
        "default: this machine's",
    )
    p.add_argument(
        "--caps",
        action="append",
        metavar="CAP,...",
        help="capabilities the container adds to the runtime defaults (CAP_ prefix optional, ALL for all)",
    )
    p.add_argument(
        "--no-default-caps",
        action="store_true",
        help="the container has only --caps, not the runtime's default capabilities",
    )
    p.add_argument(
        "--kernel",
        help="node kernel version X.Y for minKernel conditions (default: the running kernel, "
        f"{platform.release()})",
    )
    p.add_argument("--name", help="metadata.name of the resource (--to cr); default: the input's name")
    p.add_argument("--source-name", help="which SeccompProfile of a multi-document input to convert")
    p.add_argument("--namespace", help="metadata.namespace of the resource (--to cr); default: none")
    p.add_argument("--output", choices=("text", "json"), default="text", help="format of findings on stderr")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    p.add_argument("-v", "--verbose", action="store_true", help="also print infos")
    p.set_defaults(func=cmd_convert)
