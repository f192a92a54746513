"""``seccomp-operator harden FILE --from-audit LOG``: from log mode to enforce mode.

Run a profile with ``defaultAction: SCMP_ACT_LOG`` (``record --mode log`` writes one), let the
workload do its job, then feed the kernel's audit records to this command: every syscall the
kernel logged becomes an allow rule entry, and the default action becomes a deny
(``SCMP_ACT_ERRNO``, errno ENOSYS unless the profile sets ``defaultErrnoRet`` or ``--errno``
says otherwise).

Audit records (Linux ``kernel/auditsc.c`` ``audit_seccomp``, record type ``AUDIT_SECCOMP`` =
1326 in ``include/uapi/linux/audit.h``) look like this, whatever carries them:

* auditd's ``/var/log/audit/audit.log``: ``type=SECCOMP msg=audit(1732871234.512:96): auid=...
  pid=4711 comm="nginx" exe="/usr/sbin/nginx" sig=0 arch=c000003e syscall=41 compat=0
  ip=0x7f... code=0x7ffc0000``, optionally followed by a GS (``\\x1d``) and the interpreted
  fields ``ARCH=x86_64 SYSCALL=socket``;
* ``ausearch -i``: the same with ``arch=x86_64 syscall=socket`` already interpreted;
* the kernel log (``dmesg``, ``journalctl -k``, ``/var/log/kern.log``) when auditd is not
  running: ``audit: type=1326 audit(1732871234.512:96): ... arch=c000003e syscall=41 ...``.

``arch`` is an ``AUDIT_ARCH_*`` value (ELF machine | 64-bit flag 0x80000000 | little-endian
flag 0x40000000, :data:`AUDIT_ARCHES`); on x86_64 a number with bit 0x40000000 set is an x32
call.  ``code`` is the filter's return value: ``0x7ffc0000`` ``SECCOMP_RET_LOG``,
``0x0005xxxx`` ``ERRNO(xxxx)``, ``0x80000000`` kill process, ``0x00000000`` kill thread,
``0x00030000`` trap (``include/uapi/linux/seccomp.h``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from . import __version__, syscalls
from . import constants as c
from .record import errno_arg

#: ``AUDIT_ARCH_*`` (``include/uapi/linux/audit.h``) as printed in audit records, to OCI names.
AUDIT_ARCHES: Final[dict[int, str]] = {
    0xC000003E: "SCMP_ARCH_X86_64",
    0x40000003: "SCMP_ARCH_X86",
    0xC00000B7: "SCMP_ARCH_AARCH64",
    0x40000028: "SCMP_ARCH_ARM",
    0xC0000102: "SCMP_ARCH_LOONGARCH64",
    0x00000004: "SCMP_ARCH_M68K",
    0x00000008: "SCMP_ARCH_MIPS",
    0x40000008: "SCMP_ARCH_MIPSEL",
    0x80000008: "SCMP_ARCH_MIPS64",
    0xC0000008: "SCMP_ARCH_MIPSEL64",
    0xA0000008: "SCMP_ARCH_MIPS64N32",
    0xE0000008: "SCMP_ARCH_MIPSEL64N32",
    0x00000014: "SCMP_ARCH_PPC",
    0x80000015: "SCMP_ARCH_PPC64",
    0xC0000015: "SCMP_ARCH_PPC64LE",
    0x00000016: "SCMP_ARCH_S390",
    0x80000016: "SCMP_ARCH_S390X",
    0x0000000F: "SCMP_ARCH_PARISC",
    0x8000000F: "SCMP_ARCH_PARISC64",
    0xC00000F3: "SCMP_ARCH_RISCV64",
}
#: ``ausearch -i`` / enriched names of architectures.
_ARCH_WORDS: Final[dict[str, str]] = {
    "x86_64": "SCMP_ARCH_X86_64",
    "i386": "SCMP_ARCH_X86",
    "aarch64": "SCMP_ARCH_AARCH64",
    "armeb": "SCMP_ARCH_ARM",
    "arm": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc": "SCMP_ARCH_PPC",
    "s390x": "SCMP_ARCH_S390X",
    "s390": "SCMP_ARCH_S390",
    "riscv64": "SCMP_ARCH_RISCV64",
    "loongarch64": "SCMP_ARCH_LOONGARCH64",
}
#: x32 syscalls on x86_64 carry this bit (``__X32_SYSCALL_BIT``).
X32_BIT: Final = 0x40000000
#: Annotation recording what harden did (JSON object).
HARDENED_ANNOTATION: Final = f"{c.GROUP}/hardened"

_SECCOMP_RECORD = re.compile(r"\btype=(?:SECCOMP|1326)\b")
_FIELD = re.compile(r'([A-Za-z_]+)=("[^"]*"|\S+)')
_STAMP = re.compile(r"audit\(([^)]*)\)")


class HardenError(Exception):
    """A profile or audit log harden cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One seccomp audit record.

    Attributes:
        arch: OCI architecture.
        name: the syscall name on ``arch``.
        action: what the filter did: ``log``, ``errno``, ``kill``, ``trap``, ``trace``,
            ``notify``, ``allow`` or ``unknown``.
        comm, exe, pid: the process (as the kernel printed them; ``""``/0 when absent).
    """

    arch: str
    name: str
    action: str
    comm: str = ""
    exe: str = ""
    pid: int = 0


@dataclass
class AuditScan:
    """All seccomp records of a log.

    Attributes:
        events: the records that could be mapped to a syscall name.
        warnings: records skipped (unknown arch, unknown number) and why, one line per reason.
        lines: lines read; ``records`` the seccomp records among them.
    """

    events: list[AuditEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: int = 0
    records: int = 0

    def names(self, arch: str | None = None) -> Counter[str]:
        """How often each syscall name was logged (on ``arch`` only, when given)."""
        return Counter(e.name for e in self.events if arch is None or e.arch == arch)


def _action_of(code: str) -> str:
    """Name the filter return value ``code`` (``0x7ffc0000`` → ``log``); ``unknown`` if unparsable."""
    if not code.startswith("0x"):
        return code.lower() or "unknown"  # ausearch -i: code=log, code=errno...
    try:
        value = int(code, 16)
    except ValueError:
        return "unknown"
    action = value & 0xFFFF0000
    return {
        0x7FFC0000: "log",
        0x7FFF0000: "allow",
        0x7FF00000: "trace",
        0x7FC00000: "notify",
        0x00050000: "errno",
        0x00030000: "trap",
        0x80000000: "kill",
        0x00000000: "kill",
    }.get(action, "unknown")


def _fields(text: str) -> dict[str, str]:
    """``key=value`` pairs of a record (quotes removed); interpreted upper-case fields after a GS too."""
    found: dict[str, str] = {}
    for key, value in _FIELD.findall(text):
        found.setdefault(key, value.strip('"'))
    return found


def _resolve(arch_raw: str, syscall_raw: str) -> tuple[str | None, str | None, str]:
    """``(arch, name, problem)`` for one record's ``arch``/``syscall`` values."""
    arch: str | None
    if re.fullmatch(r"[0-9a-fA-F]{1,8}", arch_raw) and arch_raw.lower() not in _ARCH_WORDS:
        arch = AUDIT_ARCHES.get(int(arch_raw, 16))
    else:
        arch = _ARCH_WORDS.get(arch_raw.lower())
    if arch is None:
        return None, None, f"unknown audit arch {arch_raw}"
    if syscall_raw.isdigit():
        number = int(syscall_raw)
        if arch == "SCMP_ARCH_X86_64" and number & X32_BIT:
            arch = "SCMP_ARCH_X32"
        name = syscalls.resolve_number(number, arch)
        if name is None:
            return arch, None, f"no syscall {number} on {arch} in libseccomp {syscalls.libseccomp_version()}"
        return arch, name, ""
    if syscalls.resolve(syscall_raw, arch) is None:
        return arch, None, f"{syscall_raw!r} is not a syscall on {arch}"
    return arch, syscall_raw, ""


def parse_audit(text: str, *, arches: Iterable[str] = (), comms: Iterable[str] = ()) -> AuditScan:
    """Every seccomp audit record in ``text`` (any of the formats in the module docstring).

    Args:
        text: the log; lines without ``type=SECCOMP``/``type=1326`` are ignored.
        arches: keep only records of these OCI architectures (all when empty).
        comms: keep only records whose ``comm`` is one of these (all when empty).

    Returns:
        The :class:`AuditScan`; records whose arch or number cannot be mapped are left out
        and counted in ``warnings``.
    """
    scan = AuditScan()
    keep_arch, keep_comm = set(arches), set(comms)
    problems: Counter[str] = Counter()
    for line in text.splitlines():
        scan.lines += 1
        if not _SECCOMP_RECORD.search(line):
            continue
        scan.records += 1
        raw, _, interpreted = line.partition("\x1d")
        values = _fields(raw)
        extra = _fields(interpreted)
        arch_raw = values.get("arch") or extra.get("ARCH", "")
        syscall_raw = values.get("syscall") or extra.get("SYSCALL", "")
        if not arch_raw or not syscall_raw:
            problems["records without arch= or syscall="] += 1
            continue
        arch, name, problem = _resolve(arch_raw, syscall_raw)
        if name is None or arch is None:
            problems[problem] += 1
            continue
        comm = values.get("comm", "")
        if (keep_arch and arch not in keep_arch) or (keep_comm and comm not in keep_comm):
            continue
        pid_raw = values.get("pid", "0")
        scan.events.append(
            AuditEvent(
                arch=arch,
                name=name,
                action=_action_of(values.get("code", "")),
                comm=comm,
                exe=values.get("exe", ""),
                pid=int(pid_raw) if pid_raw.isdigit() else 0,
            )
        )
    scan.warnings.extend(f"skipped {n} record(s): {why}" for why, n in sorted(problems.items()))
    return scan


@dataclass
class Hardened:
    """The result of :func:`harden_spec`.

    Attributes:
        spec: the new spec mapping (OCI keys, plus whatever the resource had).
        added: names added to the allow list, sorted.
        skipped: ``name: reason`` for logged names not added (denied on purpose by a rule).
        added_arches: architectures added to ``architectures``.
        default_before: the default action before.
    """

    spec: dict[str, Any]
    added: list[str]
    skipped: list[str]
    added_arches: list[str]
    default_before: str


_ALLOWING = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")


def harden_spec(spec: Mapping[str, Any], scan: AuditScan, *, errno_ret: int = errno.ENOSYS) -> Hardened:
    """Add every logged syscall to ``spec``'s allow list and make the default a deny.

    Steps: (1) each logged name not yet allowed by an unconditional rule is added to the first
    unconditional ``SCMP_ACT_ALLOW`` rule (a new rule at the end when there is none), unless
    a rule with another action names it (a deliberate deny: reported in ``skipped``);
    (2) the architectures of the records are added to ``architectures`` when it is not empty
    and lacks them; (3) a ``SCMP_ACT_LOG`` default becomes ``SCMP_ACT_ERRNO`` with the
    profile's ``defaultErrnoRet`` if it has one, else ``errno_ret``; with an errno other than
    ENOSYS, ``clone3``/``openat2`` are denied with ENOSYS unless allowed (case 005); any other
    deny default is kept.

    Raises:
        HardenError: the default is ``SCMP_ACT_ALLOW`` (allowed calls are never logged, so
            the audit log cannot say what the workload needs), or the result allows nothing.
    """
    from .record import enosys_fallback_rule

    new: dict[str, Any] = json.loads(json.dumps(dict(spec)))
    default = str(new.get("defaultAction", ""))
    if default == "SCMP_ACT_ALLOW":
        raise HardenError(
            "defaultAction is SCMP_ACT_ALLOW: the kernel logs nothing for allowed syscalls, so the audit "
            "log cannot tell what to allow; run the workload under the profile in log mode first "
            "(defaultAction: SCMP_ACT_LOG, e.g. seccomp-operator record --mode log)"
        )
    rules: list[dict[str, Any]] = list(new.get("syscalls") or [])
    allowed: set[str] = set()
    denied_by: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.get("args"):
            continue
        for name in rule.get("names") or ():
            if rule.get("action") in _ALLOWING:
                allowed.add(str(name))
            else:
                denied_by.setdefault(str(name), i)
    logged = scan.names()
    added: list[str] = []
    skipped: list[str] = []
    for name in sorted(logged):
        if name in allowed:
            continue
        if name in denied_by:
            action = rules[denied_by[name]].get("action")
            skipped.append(f"{name}: denied on purpose by syscalls[{denied_by[name]}] ({action})")
            continue
        added.append(name)
    if added:
        target = next((r for r in rules if r.get("action") == "SCMP_ACT_ALLOW" and not r.get("args")), None)
        if target is None:
            target = {"names": [], "action": "SCMP_ACT_ALLOW"}
            rules.append(target)
        target["names"] = sorted({*(target.get("names") or []), *added})
        allowed.update(added)
    if not allowed:
        raise HardenError(
            "the result would allow no syscall (no allow rule and nothing in the audit log): every "
            "container would fail to start; check that the log holds type=SECCOMP/1326 records"
        )
    arches: list[str] = list(new.get("architectures") or [])
    added_arches: list[str] = []
    if arches:
        for event_arch in sorted({e.arch for e in scan.events}):
            if event_arch not in arches:
                arches.append(event_arch)
                added_arches.append(event_arch)
        new["architectures"] = arches
    if default == "SCMP_ACT_LOG":
        chosen = new.get("defaultErrnoRet")
        chosen = int(chosen) if isinstance(chosen, int) else errno_ret
        new["defaultAction"] = "SCMP_ACT_ERRNO"
        new["defaultErrnoRet"] = chosen
        if chosen != errno.ENOSYS:
            fallback = enosys_fallback_rule(allowed, arches or [syscalls.native_arch()])
            fallback["names"] = [n for n in fallback["names"] if n not in denied_by]
            if fallback["names"]:
                rules.append(fallback)
    new["syscalls"] = rules
    first = ("defaultAction", "defaultErrnoRet")
    ordered = {k: new[k] for k in first if k in new} | {k: v for k, v in new.items() if k not in first}
    return Hardened(ordered, added, skipped, added_arches, default)


# --------------------------------------------------------------------------- files


@dataclass
class ProfileFile:
    """A profile read by harden: a SeccompProfile resource (``resource``) or a node JSON (``spec`` only)."""

    spec: dict[str, Any]
    resource: dict[str, Any] | None = None


def load_profile(path: str, name: str | None = None) -> ProfileFile:
    """Read one SeccompProfile resource (YAML/JSON; ``name`` picks one of several) or a node JSON.

    Raises:
        HardenError: unreadable, not a profile, several resources without ``name``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HardenError(f"cannot read {path}: {exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise HardenError(f"{path} is neither YAML nor JSON: {exc}") from None
    resources = [d for d in docs if isinstance(d, dict) and d.get("kind") == c.PROFILE_KIND]
    if resources:
        if name is not None:
            resources = [r for r in resources if (r.get("metadata") or {}).get("name") == name]
            if not resources:
                raise HardenError(f"no SeccompProfile named {name!r} in {path}")
        if len(resources) > 1:
            raise HardenError(f"{path} holds several SeccompProfiles; choose one with --name")
        resource = resources[0]
        spec = resource.get("spec")
        if not isinstance(spec, dict):
            raise HardenError(f"{path}: the SeccompProfile has no spec")
        return ProfileFile(spec=spec, resource=resource)
    if len(docs) == 1 and isinstance(docs[0], dict) and "defaultAction" in docs[0]:
        return ProfileFile(spec=docs[0])
    raise HardenError(f"{path} holds no SeccompProfile resource and is not a profile JSON")


def _arch_arg(value: str) -> str:
    from .record import RecordError, normalize_arch

    try:
        return normalize_arch(value)
    except RecordError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_harden(args: argparse.Namespace) -> int:
    """``seccomp-operator harden``: print the hardened profile; 0 done, 2 unusable input."""
    from . import render
    from .findings import ProfileError

    try:
        profile = load_profile(args.file, args.name)
        try:
            text = Path(args.from_audit).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise HardenError(f"cannot read {args.from_audit}: {exc.strerror or exc}") from None
        scan = parse_audit(text, arches=args.arch or (), comms=args.comm or ())
        if not scan.events:
            raise HardenError(
                f"{args.from_audit}: no usable seccomp audit record (type=SECCOMP or type=1326) among "
                f"{scan.lines} lines" + ("; " + "; ".join(scan.warnings) if scan.warnings else "")
            )
        result = harden_spec(profile.spec, scan, errno_ret=args.errno)
    except HardenError as exc:
        print(f"seccomp-operator harden: {exc}", file=sys.stderr)
        return 2
    for warning in scan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in result.skipped:
        print(f"warning: not allowed: {line}", file=sys.stderr)
    for arch in result.added_arches:
        print(
            f"warning: added {arch} to architectures (records of that architecture were logged)",
            file=sys.stderr,
        )
    spec_for_render = {k: v for k, v in result.spec.items() if k not in ("baseProfileName",)}
    try:
        rendered = render.render_mapping(spec_for_render)
    except ProfileError as exc:
        for finding in exc.findings:
            print(str(finding), file=sys.stderr)
        return 2
    for finding in rendered.findings:
        print(f"warning: {finding}", file=sys.stderr)
    print(
        f"harden: {len(scan.events)} audit record(s), {len(result.added)} syscall(s) added"
        f" ({', '.join(result.added) or 'none'}); default {result.default_before} -> "
        f"{result.spec.get('defaultAction')}",
        file=sys.stderr,
    )
    if args.format == "json" or profile.resource is None:
        out = rendered.content.decode("ascii")
    else:
        resource = json.loads(json.dumps(profile.resource))
        resource["spec"] = result.spec
        meta = resource.setdefault("metadata", {})
        annotations = meta.get("annotations") or {}
        annotations[HARDENED_ANNOTATION] = json.dumps(
            {
                "tool": f"seccomp-operator harden {__version__}",
                "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                "audit": args.from_audit,
                "records": len(scan.events),
                "added": result.added,
                "defaultBefore": result.default_before,
            },
            separators=(",", ":"),
        )
        meta["annotations"] = annotations
        for key in ("status",):
            resource.pop(key, None)
        for key in ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"):
            meta.pop(key, None)
        out = yaml.safe_dump(resource, sort_keys=False, default_flow_style=False)
    if args.output_file:
        Path(args.output_file).write_text(out)
    else:
        sys.stdout.write(out)
        sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    """Add the ``harden`` subcommand to the ``seccomp-operator`` parser."""
    p = subparsers.add_parser(
        "harden",
        help="allow what the kernel's seccomp audit records show, then deny the rest",
        description=(
            "Add every syscall of the SECCOMP audit records in LOG to FILE's allow list and switch its "
            "log-mode default to a deny (SCMP_ACT_ERRNO)."
        ),
    )
    p.add_argument("file", help="a SeccompProfile resource (YAML/JSON) or a node profile JSON")
    p.add_argument(
        "--from-audit",
        required=True,
        metavar="LOG",
        help="audit.log, ausearch output, dmesg or journalctl -k output with type=SECCOMP/1326 records",
    )
    p.add_argument(
        "--arch", action="append", type=_arch_arg, help="only records of this architecture (repeatable)"
    )
    p.add_argument("--comm", action="append", help="only records of processes with this comm (repeatable)")
    p.add_argument(
        "--errno",
        type=errno_arg,
        default=errno.ENOSYS,
        help="errno of the new default when the profile has no defaultErrnoRet (default ENOSYS, 38)",
    )
    p.add_argument("--name", help="which SeccompProfile of FILE (when it holds several)")
    p.add_argument(
        "--format", choices=("same", "json"), default="same", help="same as FILE, or the node JSON"
    )
    p.add_argument("-o", "--output-file", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_harden)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seccomp_operator.harden FILE --from-audit LOG`` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="seccomp-operator")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["harden", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
