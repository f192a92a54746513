"""Render a profile into the exact bytes of the node file (the OCI ``linux.seccomp`` object).

Normal form (same spec ⇒ same bytes, always):

- keys in the order ``defaultAction, defaultErrnoRet, architectures, flags, listenerPath,
  listenerMetadata, syscalls``; rule keys ``names, action, errnoRet, args``; argument keys
  ``index, value, valueTwo, op``;
- only OCI keys: never SPO's ``baseProfileName``/``state``, Docker's ``archMap``/
  ``includes``/``excludes``/``comment``/``name``, or CRI-O's ``defaultErrno``/``errno``;
- empty or absent fields are omitted (no ``null``, no ``[]``): a profile without rules has
  no ``syscalls`` key; ``valueTwo`` is written when it was given (also ``0``);
- ``architectures`` and ``flags`` de-duplicated, first occurrence kept, input order;
- rules in input order (base profiles' rules first, see below); a rule whose effect equals
  the default action's is dropped (runc skips it: ERRNO/TRACE without ``errnoRet`` mean
  EPERM, ``SCMP_ACT_KILL`` means ``SCMP_ACT_KILL_THREAD``); rules with the same
  ``(action, errnoRet, args)`` are merged into the first such rule; names de-duplicated
  and sorted within a rule; argument conditions kept in input order;
- numbers are JSON numbers; text is ``json.dumps(doc, indent=2, ensure_ascii=True) + "\\n"``.

Base profiles (``baseProfileName``, a profile in the same namespace, SPO semantics): the
chain is followed up to ``max_depth`` links; the deepest base's rules come first, then each
nearer profile's, then the profile's own.  ``defaultAction``, ``defaultErrnoRet``,
``flags``, ``listenerPath`` and ``listenerMetadata`` come from the profile itself only
(a base contributes rules and architectures).  Architectures are unioned (the profile's
first).  Findings about a base's rules are named
``spec.baseProfileName[<base>].syscalls[i]...``.  Every base must be valid on its own.

After rendering, the document is compiled with libseccomp as runc would
(:func:`.syscalls.compile_filter`); a refusal is an error, and so is a program longer
than the kernel's ``BPF_MAXINSNS`` (4096 instructions, ``seccomp()`` refuses it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import constants as c
from . import syscalls
from .findings import BaseProfileMissing, Finding, ProfileError, Severity, errors
from .spec import ProfileSpec, SyscallRule, join, parse_profile_json, parse_spec, quote
from .validate import combine, effective, validate

#: Finds a base profile by name in the profile's namespace: its parsed spec, its raw ``spec``
#: mapping (parsed here; parse errors make the base invalid), or None when it does not exist.
LookupBase = Callable[[str], ProfileSpec | Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered profile.

    Attributes:
        content: the exact bytes of the node file (ASCII JSON, trailing newline).
        sha256: hex SHA-256 of ``content``.
        document: ``json.loads(content)``: the OCI ``linux.seccomp`` object.
        findings: the warnings and infos (no errors) about the profile.
        bpf_instructions: size of the libseccomp-generated BPF program (instructions).
    """

    content: bytes
    sha256: str
    document: dict[str, Any]
    findings: tuple[Finding, ...]
    bpf_instructions: int


def _base_prefix(prefix: str, base: str) -> str:
    return f"{join(prefix, 'baseProfileName')}[{base}]"


def _chain(
    spec: ProfileSpec, lookup: LookupBase | None, max_depth: int, prefix: str, name: str | None
) -> list[tuple[str, ProfileSpec]]:
    """The base profiles of ``spec``, nearest first.

    Raises:
        BaseProfileMissing: a link names a profile ``lookup`` does not find.
        ProfileError: a cycle, more than ``max_depth`` links, or a base whose raw spec
            mapping does not parse.
    """
    path = join(prefix, "baseProfileName")
    trail = [name or "this profile"]
    seen = {name} if name else set()
    chain: list[tuple[str, ProfileSpec]] = []
    current = spec
    while current.base_profile_name:
        base = current.base_profile_name
        trail.append(base)
        shown = " -> ".join(trail)
        if base in seen:
            raise ProfileError([Finding(Severity.ERROR, path, f"baseProfileName forms a cycle: {shown}")])
        if len(chain) >= max_depth:
            raise ProfileError(
                [
                    Finding(
                        Severity.ERROR,
                        path,
                        f"the chain of base profiles is longer than {max_depth}: {shown}",
                        "flatten some base profiles into one",
                    )
                ]
            )
        found = lookup(base) if lookup is not None else None
        if found is None:
            raise BaseProfileMissing(
                [
                    Finding(
                        Severity.ERROR,
                        path,
                        f"base profile {quote(base)} does not exist (yet) in this namespace: {shown}",
                        "create it; this profile is rendered as soon as it exists",
                    )
                ]
            )
        if not isinstance(found, ProfileSpec):
            parsed, problems = parse_spec(found, prefix=_base_prefix(prefix, base))
            if parsed is None:
                invalid = Finding(Severity.ERROR, path, f"base profile {quote(base)} is invalid")
                raise ProfileError([invalid, *errors(problems)])
            found = parsed
        seen.add(base)
        chain.append((base, found))
        current = found
    return chain


def _merge(
    spec: ProfileSpec, chain: Sequence[tuple[str, ProfileSpec]], prefix: str
) -> tuple[ProfileSpec, list[str], list[str]]:
    """The profile with its bases' rules and architectures, and each rule's/arch's field path."""
    rules: list[SyscallRule] = []
    rule_paths: list[str] = []
    for base, base_spec in reversed(chain):
        bprefix = _base_prefix(prefix, base)
        rules.extend(base_spec.syscalls)
        rule_paths.extend(f"{join(bprefix, 'syscalls')}[{i}]" for i in range(len(base_spec.syscalls)))
    rules.extend(spec.syscalls)
    rule_paths.extend(f"{join(prefix, 'syscalls')}[{i}]" for i in range(len(spec.syscalls)))

    arches: dict[str, str] = {}
    sources = [(prefix, spec), *((_base_prefix(prefix, b), s) for b, s in chain)]
    for aprefix, source in sources:
        for i, arch in enumerate(source.architectures):
            arches.setdefault(arch, f"{join(aprefix, 'architectures')}[{i}]")
    merged = replace(spec, syscalls=tuple(rules), architectures=tuple(arches), base_profile_name=None)
    return merged, rule_paths, list(arches.values())


def _arg_key(rule: SyscallRule) -> tuple[tuple[int, int, int | None, str], ...]:
    return tuple((a.index, a.value, a.value_two, a.op) for a in rule.args)


def normalize(spec: ProfileSpec) -> tuple[dict[str, Any], list[list[int]]]:
    """The normal-form OCI document of a (valid) spec; see the module docstring.

    Returns:
        ``(document, sources)``: ``sources[i]`` lists the indexes in ``spec.syscalls`` of
        the rules merged into the document's ``syscalls[i]``.
    """
    default = effective(spec.default_action, spec.default_errno_ret)
    doc: dict[str, Any] = {"defaultAction": spec.default_action}
    if spec.default_errno_ret is not None:
        doc["defaultErrnoRet"] = spec.default_errno_ret
    if spec.architectures:
        doc["architectures"] = list(dict.fromkeys(spec.architectures))
    if spec.flags:
        doc["flags"] = list(dict.fromkeys(spec.flags))
    if spec.listener_path:
        doc["listenerPath"] = spec.listener_path
    if spec.listener_metadata:
        doc["listenerMetadata"] = spec.listener_metadata

    groups: dict[tuple[Any, ...], tuple[set[str], list[int]]] = {}
    first: dict[tuple[Any, ...], SyscallRule] = {}
    for i, rule in enumerate(spec.syscalls):
        if not rule.names or effective(rule.action, rule.errno_ret) == default:
            continue
        key = (rule.action, rule.errno_ret, _arg_key(rule))
        names, sources = groups.setdefault(key, (set(), []))
        names.update(rule.names)
        sources.append(i)
        first.setdefault(key, rule)

    rules: list[dict[str, Any]] = []
    for key, (names, _) in groups.items():
        rule = first[key]
        entry: dict[str, Any] = {"names": sorted(names), "action": rule.action}
        if rule.errno_ret is not None:
            entry["errnoRet"] = rule.errno_ret
        if rule.args:
            args = []
            for arg in rule.args:
                item: dict[str, Any] = {"index": arg.index, "value": arg.value}
                if arg.value_two is not None:
                    item["valueTwo"] = arg.value_two
                item["op"] = arg.op
                args.append(item)
            entry["args"] = args
        rules.append(entry)
    if rules:
        doc["syscalls"] = rules
    return doc, [sources for _, sources in groups.values()]


def dumps(document: dict[str, Any]) -> bytes:
    """The file bytes of a document: ``json.dumps(indent=2, ensure_ascii=True) + "\\n"``."""
    return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")


_RULE_PATH = re.compile(r"^syscalls\[(\d+)\](?:\.names\[(\d+)\])?")
_ARCH_PATH = re.compile(r"^architectures\[(\d+)\]")


def _source_path(
    path: str,
    doc: dict[str, Any],
    spec: ProfileSpec,
    sources: list[list[int]],
    rule_paths: Sequence[str],
    arch_paths: Sequence[str],
    prefix: str,
) -> str:
    """The input field a :class:`~.syscalls.CompileError` path of the rendered document came from."""
    if match := _RULE_PATH.match(path):
        i = int(match.group(1))
        if i < len(sources) and sources[i]:
            if match.group(2) is not None:
                name = doc["syscalls"][i]["names"][int(match.group(2))]
                for k in sources[i]:
                    if name in spec.syscalls[k].names:
                        return f"{join(rule_paths[k], 'names')}[{spec.syscalls[k].names.index(name)}]"
            return rule_paths[sources[i][0]] + path[match.end() :]
    if match := _ARCH_PATH.match(path):
        i = int(match.group(1))
        if i < len(arch_paths):
            return arch_paths[i]
    return join(prefix, path) if path else prefix


def render(
    spec: ProfileSpec,
    *,
    lookup_base: LookupBase | None = None,
    max_depth: int = c.MAX_BASE_DEPTH,
    prefix: str = "spec",
    name: str | None = None,
) -> Rendered:
    """Validate ``spec`` (with its base profiles) and render the node file.

    Args:
        spec: the parsed profile (from :func:`.spec.parse_spec` or :func:`.spec.parse_profile_json`).
        lookup_base: returns a profile in the same namespace by name (its parsed spec or
            its raw ``spec`` mapping), or None when it does not exist.  Without it, any
            ``baseProfileName`` is missing.
        max_depth: most ``baseProfileName`` links followed.
        prefix: path prefix of findings (``spec``; ``""`` for bare JSON).
        name: the profile's own name, so that a chain leading back to it is named a cycle.

    Returns:
        The :class:`Rendered` file; same spec and bases ⇒ same bytes.

    Raises:
        BaseProfileMissing: ``lookup_base`` returned None for a base in the chain.
        ProfileError: any error finding (all findings, errors first), a base that is
            invalid on its own, a cycle or a chain longer than ``max_depth``, a refusal by
            libseccomp, or a BPF program over 4096 instructions.  Nothing is rendered then.
    """
    own = validate(spec, prefix=prefix)
    if errors(own):
        raise ProfileError(own)
    if spec.base_profile_name:
        chain = _chain(spec, lookup_base, max_depth, prefix, name)
        for base, base_spec in chain:
            bad = errors(validate(base_spec, prefix=_base_prefix(prefix, base)))
            if bad:
                invalid = Finding(
                    Severity.ERROR, join(prefix, "baseProfileName"), f"base profile {quote(base)} is invalid"
                )
                raise ProfileError([invalid, *bad])
        merged, rule_paths, arch_paths = _merge(spec, chain, prefix)
        found = validate(merged, prefix=prefix, rule_paths=rule_paths, arch_paths=arch_paths)
        if errors(found):
            raise ProfileError(found)
    else:
        merged, found = spec, own
        rule_paths = [f"{join(prefix, 'syscalls')}[{i}]" for i in range(len(spec.syscalls))]
        arch_paths = [f"{join(prefix, 'architectures')}[{i}]" for i in range(len(spec.architectures))]

    doc, sources = normalize(merged)
    content = dumps(doc)
    # Each argument condition costs at least one BPF instruction: refuse what cannot fit
    # before libseccomp spends seconds (quadratic in rules per syscall) finding out.
    conditions = sum(len(rule.args) for rule in merged.syscalls)
    if conditions > syscalls.BPF_MAXINSNS:
        raise ProfileError(
            [
                Finding(
                    Severity.ERROR,
                    join(prefix, "syscalls"),
                    f"the rules have {conditions} argument conditions; each needs at least one BPF "
                    f"instruction and the kernel refuses more than {syscalls.BPF_MAXINSNS} (BPF_MAXINSNS)",
                    "merge rules or drop argument conditions",
                ),
                *found,
            ]
        )
    try:
        instructions = syscalls.compile_filter(doc)
    except syscalls.CompileError as exc:
        path = _source_path(exc.path, doc, merged, sources, rule_paths, arch_paths, prefix)
        raise ProfileError([Finding(Severity.ERROR, path, exc.message), *found]) from None
    if instructions > syscalls.BPF_MAXINSNS:
        raise ProfileError(
            [
                Finding(
                    Severity.ERROR,
                    join(prefix, "syscalls"),
                    f"the compiled filter has {instructions} BPF instructions; the kernel refuses more than "
                    f"{syscalls.BPF_MAXINSNS} (BPF_MAXINSNS)",
                    "merge rules, drop argument conditions or list fewer architectures",
                ),
                *found,
            ]
        )
    return Rendered(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        document=json.loads(content),
        findings=tuple(found),
        bpf_instructions=instructions,
    )


def _render_parsed(spec: ProfileSpec, parsed: list[Finding], **kwargs: Any) -> Rendered:
    """:func:`render`, with the parser's (non-error) findings added to the result or the exception."""
    try:
        rendered = render(spec, **kwargs)
    except BaseProfileMissing as exc:
        raise BaseProfileMissing([*exc.findings, *parsed]) from None
    except ProfileError as exc:
        raise ProfileError([*parsed, *exc.findings], reason=exc.reason) from None
    return replace(rendered, findings=(*parsed, *rendered.findings))


def render_mapping(
    spec_mapping: object,
    *,
    lookup_base: LookupBase | None = None,
    max_depth: int = c.MAX_BASE_DEPTH,
    prefix: str = "spec",
    name: str | None = None,
) -> Rendered:
    """Parse, validate and render a ``SeccompProfile`` ``spec`` mapping (see :func:`render`).

    Raises:
        ProfileError: every parse and validation finding at once when any is an error.
        BaseProfileMissing: as :func:`render`.
    """
    spec, found = parse_spec(spec_mapping, prefix=prefix, partial=True)
    if spec is None:
        raise ProfileError(found)
    if errors(found):
        raise ProfileError(combine(found, validate(spec, prefix=prefix)))
    return _render_parsed(spec, found, lookup_base=lookup_base, max_depth=max_depth, prefix=prefix, name=name)


def render_profile_json(text: str | bytes) -> Rendered:
    """Parse (strictly), validate and render a bare profile JSON text (no base profiles).

    Findings have paths without ``spec.`` (``syscalls[0].names[1]``).

    Raises:
        ProfileError: every finding at once when any is an error.
    """
    spec, found = parse_profile_json(text, partial=True)
    if spec is None:
        raise ProfileError(found)
    if errors(found):
        raise ProfileError(combine(found, validate(spec, prefix="")))
    return _render_parsed(spec, found, prefix="")
