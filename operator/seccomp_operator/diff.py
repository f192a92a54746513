"""``seccomp-operator diff A B``: which syscalls each profile allows or denies that the other does not.

Both files are read like ``convert`` reads them (:func:`.convert.convert_file`: Docker/moby,
CRI-O, SeccompProfile YAML or plain OCI JSON), flattened for the same architecture,
capabilities and kernel, and rendered to the normal form.  Then, per architecture, every
syscall name libseccomp knows on that architecture (:func:`.syscalls.syscall_names` plus the
names either profile lists, kept when :func:`.syscalls.resolve` finds them there) gets a
verdict under each profile, as runc builds the filter (:func:`verdict`): the first
unconditional rule naming it, else its conditional rules (with the default for the rest),
else the default action.  ``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD`` and ERRNO/TRACE
without ``errnoRet`` return EPERM (runc), so only real differences show.

Architectures compared: the union of both profiles' ``architectures`` that the local
libseccomp knows, or the target architecture when neither lists any.  A profile that lists
architectures but not this one does not filter it with its rules (the kernel sees a foreign
audit arch and libseccomp applies the bad-architecture action): that is reported, and the
names are not compared there.

Exit codes: 0 same verdicts everywhere, 1 different, 2 a file cannot be read or is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from . import syscalls
from .convert import Converted, ConvertError, Target, convert_file, make_target
from .findings import Severity
from .spec import ProfileSpec, SyscallRule, parse_profile
from .validate import effective

#: Actions under which the call runs (for "allowed by A only").
ALLOW_CLASS: Final = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a profile does with one syscall on one architecture.

    Attributes:
        kind: ``allow`` (ALLOW/LOG), ``deny`` (ERRNO, KILL*, TRAP, TRACE), ``notify`` or
            ``conditional`` (depends on arguments).
        text: the outcome in runtime terms, e.g. ``SCMP_ACT_ERRNO(1)`` or
            ``SCMP_ACT_ALLOW if arg0 & 0x7e020000 == 0, else SCMP_ACT_ERRNO(1)``.
    """

    kind: str
    text: str


def _action_text(action: str, errno_ret: int | None) -> str:
    name, value = effective(action, errno_ret)
    return f"{name}({value})" if value is not None else name


def _kind(action: str) -> str:
    if action in ALLOW_CLASS:
        return "allow"
    if action == "SCMP_ACT_NOTIFY":
        return "notify"
    return "deny"


_OPS: Final = {
    "SCMP_CMP_NE": "!=",
    "SCMP_CMP_LT": "<",
    "SCMP_CMP_LE": "<=",
    "SCMP_CMP_EQ": "==",
    "SCMP_CMP_GE": ">=",
    "SCMP_CMP_GT": ">",
}


def _conditions(rule: SyscallRule) -> str:
    parts = []
    for arg in rule.args:
        if arg.op == "SCMP_CMP_MASKED_EQ":
            parts.append(f"arg{arg.index} & {arg.value:#x} == {arg.value_two or 0:#x}")
        else:
            parts.append(f"arg{arg.index} {_OPS.get(arg.op, arg.op)} {arg.value:#x}")
    return " and ".join(parts)


def verdict(spec: ProfileSpec, name: str) -> Verdict:
    """The outcome of syscall ``name`` under ``spec`` (a rendered, valid profile), as runc builds it.

    Rules whose effect equals the default are skipped (runc does); the first unconditional
    rule naming ``name`` wins; otherwise conditional rules are listed in order, with the
    default for calls they do not match.
    """
    default = effective(spec.default_action, spec.default_errno_ret)
    default_text = _action_text(spec.default_action, spec.default_errno_ret)
    conditional: list[SyscallRule] = []
    for rule in spec.syscalls:
        if name not in rule.names or effective(rule.action, rule.errno_ret) == default:
            continue
        if not rule.args:
            return Verdict(_kind(rule.action), _action_text(rule.action, rule.errno_ret))
        conditional.append(rule)
    if conditional:
        branches = [f"{_action_text(r.action, r.errno_ret)} if {_conditions(r)}" for r in conditional]
        return Verdict("conditional", ", ".join(branches) + f", else {default_text}")
    return Verdict(_kind(spec.default_action), default_text)


@dataclass
class ArchDiff:
    """The differences on one architecture.

    Attributes:
        arch: OCI architecture name.
        only_a: names ``A`` allows and ``B`` denies (sorted).
        only_b: names ``B`` allows and ``A`` denies (sorted).
        errno_only: names both deny, with another errno or action (e.g. EPERM and ENOSYS), sorted.
        different: other differences: ``(name, A's verdict, B's verdict)``, sorted by name.
        same: how many names have the same verdict.
        note: why names were not compared (an architecture only one profile lists), or ``""``.
    """

    arch: str
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    errno_only: list[str] = field(default_factory=list)
    different: list[tuple[str, str, str]] = field(default_factory=list)
    same: int = 0
    note: str = ""

    @property
    def equal(self) -> bool:
        """No difference on this architecture."""
        return not (self.only_a or self.only_b or self.errno_only or self.different or self.note)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "architecture": self.arch,
            "allowedOnlyByA": self.only_a,
            "allowedOnlyByB": self.only_b,
            "deniedDifferently": self.errno_only,
            "different": [{"name": n, "a": a, "b": b} for n, a, b in self.different],
            "same": self.same,
            "note": self.note,
        }


@dataclass
class ProfileDiff:
    """The result of :func:`compare`.

    Attributes:
        arches: one :class:`ArchDiff` per compared architecture.
        fields: top-level fields that differ and do not show in verdicts (``flags``, listener).
    """

    arches: list[ArchDiff]
    fields: list[str]

    @property
    def equal(self) -> bool:
        """Same verdicts everywhere and same other fields."""
        return not self.fields and all(a.equal for a in self.arches)


def compare(a: ProfileSpec, b: ProfileSpec, *, fallback_arch: str) -> ProfileDiff:
    """Compare two rendered profiles per architecture (see the module docstring).

    Args:
        a, b: valid profiles (normal form).
        fallback_arch: the OCI architecture compared when neither lists any.
    """
    listed = list(dict.fromkeys(x for x in (*a.architectures, *b.architectures) if syscalls.arch_known(x)))
    arches = listed or [fallback_arch]
    known = syscalls.syscall_names()
    listed_names = {n for spec in (a, b) for rule in spec.syscalls for n in rule.names}
    out: list[ArchDiff] = []
    for arch in arches:
        result = ArchDiff(arch)
        missing = [
            label
            for label, spec in (("A", a), ("B", b))
            if spec.architectures and arch not in spec.architectures
        ]
        if missing:
            result.note = (
                f"only {'B' if missing == ['A'] else 'A'} lists {arch}; on such a node the other profile's "
                "rules do not apply to calls of this ABI (libseccomp's bad-architecture action does)"
            )
            out.append(result)
            continue
        for name in sorted(n for n in known | listed_names if syscalls.resolve(n, arch) is not None):
            va, vb = verdict(a, name), verdict(b, name)
            if va == vb:
                result.same += 1
            elif va.kind == "allow" and vb.kind == "deny":
                result.only_a.append(name)
            elif vb.kind == "allow" and va.kind == "deny":
                result.only_b.append(name)
            elif va.kind == vb.kind == "deny":
                result.errno_only.append(name)
            else:
                result.different.append((name, va.text, vb.text))
        out.append(result)
    fields = [
        key
        for key, va, vb in (
            ("flags", set(a.flags), set(b.flags)),
            ("listenerPath", a.listener_path, b.listener_path),
            ("listenerMetadata", a.listener_metadata, b.listener_metadata),
        )
        if va != vb
    ]
    return ProfileDiff(out, fields)


def load(path: str, target: Target) -> tuple[ProfileSpec, Converted]:
    """Read, flatten and render one side; ``FILE#NAME`` picks a SeccompProfile of a multi-document file.

    Raises:
        ConvertError: the file cannot be read or the profile is invalid.
    """
    file, sep, name = path.rpartition("#")
    if not sep or not file:
        file, name = path, ""
    converted = convert_file(file, target, name=name or None)
    spec, found = parse_profile(converted.rendered.document)
    if spec is None:  # pragma: no cover - a rendered document always parses
        raise ConvertError(found)
    return spec, converted


def _format_names(names: Sequence[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def cmd_diff(args: argparse.Namespace) -> int:
    """``seccomp-operator diff``: print per-architecture differences; exit 0 same, 1 different, 2 error."""
    from .cli import EXIT_ERRORS, EXIT_OK, EXIT_WARNINGS

    try:
        target = make_target(
            args.arch, args.caps or (), default_caps=not args.no_default_caps, kernel=args.kernel
        )
        a, _ = load(args.a, target)
        b, _ = load(args.b, target)
    except ConvertError as e:
        for f in sorted(e.findings, key=lambda f: f.severity is not Severity.ERROR):
            if f.severity is Severity.ERROR:
                print(str(f), file=sys.stderr)
        return EXIT_ERRORS
    result = compare(a, b, fallback_arch=target.oci_arch)
    if args.output == "json":
        doc = {
            "a": args.a,
            "b": args.b,
            "equal": result.equal,
            "fields": result.fields,
            "architectures": [x.as_dict() for x in result.arches],
        }
        print(json.dumps(doc, indent=2))
    else:
        limit = 10**6 if args.verbose else 40
        print(f"A: {args.a}\nB: {args.b}")
        for x in result.arches:
            if x.note:
                print(f"{x.arch}: {x.note}")
                continue
            if x.equal:
                print(f"{x.arch}: same outcome for all {x.same} syscalls")
                continue
            print(f"{x.arch}: {x.same} syscalls the same")
            if x.only_a:
                print(f"  allowed by A, denied by B ({len(x.only_a)}): {_format_names(x.only_a, limit)}")
            if x.only_b:
                print(f"  allowed by B, denied by A ({len(x.only_b)}): {_format_names(x.only_b, limit)}")
            if x.errno_only:
                pairs = sorted({(verdict(a, n).text, verdict(b, n).text) for n in x.errno_only})
                how = "; ".join(f"A {pa}, B {pb}" for pa, pb in pairs[:4])
                print(
                    f"  denied by both, differently ({len(x.errno_only)}: {how}): "
                    f"{_format_names(x.errno_only, limit)}"
                )
            for name, va, vb in x.different[:limit]:
                print(f"  {name}: A {va}; B {vb}")
            if len(x.different) > limit:
                print(f"  and {len(x.different) - limit} more differences (-v shows all)")
        for key in result.fields:
            print(f"{key} differs")
    return EXIT_OK if result.equal else EXIT_WARNINGS


def register(subparsers: Any) -> None:
    """Add ``diff`` to the ``seccomp-operator`` command (see :mod:`.cli`)."""
    p = subparsers.add_parser(
        "diff",
        help="show which syscalls each of two profiles allows or denies that the other does not",
        description=(
            "Compare two profiles (any format convert reads; FILE#NAME picks one SeccompProfile) per "
            "architecture. Exit 0 same, 1 different, 2 error."
        ),
    )
    p.add_argument("a", help="first profile (A)")
    p.add_argument("b", help="second profile (B)")
    p.add_argument("--arch", help="node architecture for Docker/CRI-O conditions (default: this machine's)")
    p.add_argument(
        "--caps", action="append", metavar="CAP,...", help="capabilities added to the runtime defaults"
    )
    p.add_argument("--no-default-caps", action="store_true", help="the container has only --caps")
    p.add_argument("--kernel", help="node kernel X.Y for minKernel conditions (default: the running kernel)")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("-v", "--verbose", action="store_true", help="list every name")
    p.set_defaults(func=cmd_diff)
