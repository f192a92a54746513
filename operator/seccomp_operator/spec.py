"""Strict parsing of profiles into a typed model, with every problem as a :class:`Finding`.

Two inputs:

- a ``SeccompProfile`` resource's ``spec`` mapping (from YAML or JSON), field paths
  prefixed ``spec.`` (:func:`parse_spec`);
- a bare profile JSON text as a node file or a Docker-style profile, field paths without
  prefix (:func:`parse_profile_json`, or :func:`parse_profile` for already decoded data).

Bad input never raises: each problem becomes a finding naming the exact field
(``spec.syscalls[2].names[0]``), saying what is wrong and what to write instead.  JSON is
decoded strictly, as the runtimes' Go decoders do: no trailing commas, no comments, no
``NaN``; duplicate keys are refused (Go silently keeps the last one).

Shapes accepted here but not checked for meaning (that is :mod:`.validate`): action,
arch, flag and operator strings, number ranges, empty ``names``.  Conversions:

- a quoted decimal numeral in a numeric field (``errnoRet: "38"``, what SPO's
  ``v1beta1`` CRD accepted, case 004) becomes the number, with an info finding;
- in bare JSON, the legacy singular ``"name": "x"`` (Docker 1.10 era) becomes
  ``names: ["x"]`` with a warning, because containerd's OCI decoder ignores it (case 001).

Everything else outside the OCI ``linux.seccomp`` object (and, for resources, SPO's
``baseProfileName`` plus our ``state``) is an error, with a "did you mean" for near misses.
"""

from __future__ import annotations

import difflib
import errno
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from . import constants as c
from .findings import Finding, Severity, errors

#: Longest profile text accepted (bytes).  etcd refuses objects over 1.5 MiB anyway.
MAX_TEXT_BYTES: Final = 8 * 1024 * 1024
#: Most rules in one profile.
MAX_RULES: Final = 10_000
#: Most syscall names over all rules of one profile.
MAX_NAMES: Final = 100_000
#: Most entries in any other list (architectures, flags, args).
MAX_ITEMS: Final = 1_000
#: Deepest nesting of JSON arrays/objects (a valid profile needs 4).
MAX_DEPTH: Final = 32
#: Longest string in any field (characters); ``PATH_MAX`` is 4096.
MAX_STRING: Final = 4096

#: OCI ``linux.seccomp`` keys (runtime-spec ``config-linux.json``), in normal-form order.
OCI_KEYS: Final[tuple[str, ...]] = (
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
)
#: Keys of a ``SeccompProfile`` spec: the OCI keys, SPO's ``baseProfileName`` and ``disabled``, our ``state``.
CR_KEYS: Final[tuple[str, ...]] = (*OCI_KEYS, "baseProfileName", "state", "disabled")
RULE_KEYS: Final[tuple[str, ...]] = ("names", "action", "errnoRet", "args")
ARG_KEYS: Final[tuple[str, ...]] = ("index", "value", "valueTwo", "op")

_ACTION_SHAPE = 'actions are strings such as "SCMP_ACT_ERRNO"'
_NUMERAL = re.compile(r"^[0-9]+$")

#: Keys some tools write that the OCI decoders (containerd) do not read: (message, hint).
_FOREIGN_TOP: Final[dict[str, tuple[str, str]]] = {
    "archMap": (
        "is a Docker/moby extension; containerd ignores it (CRI-O reads it), so architectures would be empty",
        'list them in "architectures" instead, e.g. with the CLI "convert" command',
    ),
    "defaultErrno": (
        "is a CRI-O (containers/common) extension that containerd ignores: the default would silently "
        "be EPERM",
        "write defaultErrnoRet with the number instead",
    ),
}
_FOREIGN_RULE: Final[dict[str, tuple[str, str]]] = {
    "includes": (
        "is a Docker/moby condition (caps, arches, minKernel); containerd ignores it and applies the rule "
        "unconditionally",
        "flatten the profile for one architecture and capability set first, e.g. with the CLI "
        '"convert" command',
    ),
    "excludes": (
        "is a Docker/moby condition (caps, arches, minKernel); containerd ignores it and applies the rule "
        "unconditionally",
        "flatten the profile for one architecture and capability set first, e.g. with the CLI "
        '"convert" command',
    ),
    "errno": (
        "is a CRI-O (containers/common) extension that containerd ignores: the rule would silently "
        "return EPERM",
        "write errnoRet with the number instead",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SyscallArg:
    """One argument condition of a rule (OCI ``LinuxSeccompArg``).

    Attributes:
        index: argument position, 0..5 once validated.
        value: compared value (unsigned 64-bit once validated); the mask for ``SCMP_CMP_MASKED_EQ``.
        value_two: second value (``valueTwo``), None when not given.
        op: comparison operator string, e.g. ``SCMP_CMP_EQ``.
    """

    index: int
    value: int
    value_two: int | None = None
    op: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyscallRule:
    """One entry of ``syscalls`` (OCI ``LinuxSyscall``).

    Attributes:
        names: syscall names in input order (legacy ``name`` already converted).
        action: action string; ``""`` when missing or not a string (a finding says which).
        errno_ret: ``errnoRet``, None when not given.
        args: argument conditions, all of which must match.
    """

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileSpec:
    """A parsed profile: the OCI ``linux.seccomp`` fields plus the resource-only ones.

    Attributes:
        default_action: ``defaultAction``; ``""`` when missing or not a string.
        default_errno_ret: ``defaultErrnoRet``, None when not given.
        architectures: ``SCMP_ARCH_*`` strings in input order.
        flags: ``SECCOMP_FILTER_FLAG_*`` strings in input order.
        listener_path: ``listenerPath`` (the seccomp agent's unix socket), None when not given.
        listener_metadata: ``listenerMetadata`` passed to the agent, None when not given.
        syscalls: rules in input order.
        base_profile_name: SPO's ``baseProfileName`` (a profile in the same namespace), or None.
        state: ``Enabled`` (default) or ``Disabled``; SPO's ``disabled: true`` maps to ``Disabled``.
    """

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[SyscallRule, ...] = ()
    base_profile_name: str | None = None
    state: str = c.STATE_ENABLED


class _JSONObject(dict[str, Any]):
    """A decoded JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _JSONObject:
    obj = _JSONObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


class _NotJSONConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJSONConstant(name)


def join(prefix: str, key: str) -> str:
    """Field path ``key`` below ``prefix`` (``""`` means the top level): ``join("spec", "flags")``."""
    return f"{prefix}.{key}" if prefix else key


def quote(value: str, limit: int = 60) -> str:
    """``value`` as a JSON string for messages, shortened to about ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def show_number(value: int | float) -> str:
    """A number for messages; very long integers are shortened (``repr`` refuses over 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        return f"a {value.bit_length()}-bit {'negative ' if value < 0 else ''}number"
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def describe(value: object) -> str:
    """A value's kind in the user's terms: ``the number 0``, ``a list``, ``null``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {show_number(value)}"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def suggest(value: str, choices: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The nearest of ``choices`` to ``value`` (case, spaces and ``_`` ignored first, then difflib)."""

    def squash(text: str) -> str:
        return re.sub(r"[\s_\-]", "", text).lower()

    for choice in choices:
        if squash(choice) == squash(value):
            return choice
    close = difflib.get_close_matches(value, choices, n=1, cutoff=cutoff)
    if close:
        return close[0]
    upper = difflib.get_close_matches(value.strip().upper(), [x.upper() for x in choices], n=1, cutoff=cutoff)
    return next((x for x in choices if x.upper() == upper[0]), None) if upper else None


def errno_number(name: str) -> int | None:
    """The number of an errno name (``"ENOSYS"`` → 38) from Python's :mod:`errno`, or None."""
    value = getattr(errno, name.strip().upper(), None)
    return value if isinstance(value, int) and name.strip().upper().startswith("E") else None


def _looks_like_path(text: str) -> bool:
    text = text.strip()
    if not text or "\n" in text or len(text) > 4096 or text[0] in "{[":
        return False
    return "/" in text or text.endswith((".json", ".yaml", ".yml")) or text.startswith(("~", "."))


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def decode_json(text: str | bytes) -> tuple[Any, list[Finding]]:
    """Decode profile text strictly, as the runtimes' JSON decoders do.

    Refused, each with line and column where known: invalid UTF-8, a byte-order mark,
    empty text, trailing commas, comments, single quotes, ``NaN``/``Infinity``, duplicate
    keys (reported by :func:`parse_profile` with their field path), text over
    :data:`MAX_TEXT_BYTES`, nesting over :data:`MAX_DEPTH`.

    Returns:
        ``(value, findings)``; ``value`` is None whenever ``findings`` holds an error.
        Objects are ``dict`` subclasses carrying the duplicate keys they saw.
    """

    def fail(message: str, hint: str = "") -> tuple[Any, list[Finding]]:
        return None, [Finding(Severity.ERROR, "", message, hint)]

    if len(text) > MAX_TEXT_BYTES:
        return fail(f"the profile is {len(text)} bytes long; at most {MAX_TEXT_BYTES} are accepted")
    if isinstance(text, bytes):
        if text.startswith(b"\xef\xbb\xbf"):
            return fail(
                "the file starts with a UTF-8 byte-order mark, which JSON decoders refuse",
                "save it without BOM",
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return fail(f"the file is not UTF-8 text (invalid byte at offset {exc.start})")
    if text.startswith("\ufeff"):
        return fail(
            "the file starts with a UTF-8 byte-order mark, which JSON decoders refuse", "save it without BOM"
        )
    if not text.strip():
        return fail('the file is empty; a profile is a JSON object with at least "defaultAction"')
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except _NotJSONConstant as exc:
        return fail(f"{exc} is not valid JSON (strict JSON has no NaN or Infinity)", "write a number")
    except json.JSONDecodeError as exc:
        return fail(*_syntax_message(text, exc))
    except RecursionError:
        return fail(f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)")
    except ValueError as exc:  # e.g. an integer with thousands of digits
        return fail(f"not valid JSON: {exc}")
    if _depth(value) > MAX_DEPTH:
        return fail(f"the JSON is nested more than {MAX_DEPTH} levels deep; a profile needs at most 4")
    return value, []


def _syntax_message(text: str, exc: json.JSONDecodeError) -> tuple[str, str]:
    pos = min(exc.pos, len(text))
    line, col = _position(text, pos)
    where = f"line {line}, column {col}"
    here = text[pos : pos + 2]
    before = text[:pos].rstrip()
    if here[:1] in ("]", "}") and before.endswith(","):
        cline, ccol = _position(text, len(before) - 1)
        return (
            f"invalid JSON at line {cline}, column {ccol}: trailing comma before {here[:1]!r} "
            "(strict JSON, as runtimes parse it)",
            "remove the comma after the last item",
        )
    if here in ("//", "/*") or here[:1] == "#":
        return f"invalid JSON at {where}: comments are not allowed in JSON", "remove the comment"
    if here[:1] == "'":
        return f"invalid JSON at {where}: strings and keys need double quotes", "use \" instead of '"
    at_start = pos == len(text) - len(text.lstrip())
    if at_start and exc.msg == "Expecting value" and _looks_like_path(text):
        return (
            f"not JSON ({where}): looks like a file path",
            "pass the profile file's content, not its name",
        )
    if exc.msg == "Extra data":
        return f"invalid JSON at {where}: more text after the end of the profile object", ""
    if at_start and exc.msg == "Expecting value":
        return f"not JSON ({where}): the text does not start with a JSON value", "a profile starts with {"
    return f"invalid JSON at {where}: {exc.msg.lower()}", ""


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((v, level + 1) for v in item)
    return deepest


class _Parser:
    """Walks one profile mapping; collects findings; builds a best-effort :class:`ProfileSpec`."""

    def __init__(self, *, resource: bool) -> None:
        self.resource = resource
        self.findings: list[Finding] = []
        self.names_seen = 0
        #: paths of rules whose legacy singular ``name`` was converted
        self.legacy: list[str] = []
        #: paths of Docker ``comment`` keys, dropped
        self.comments: list[str] = []

    # -- findings ---------------------------------------------------------------------------
    def error(self, path: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(Severity.ERROR, path, message, hint))

    def warning(self, path: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(Severity.WARNING, path, message, hint))

    def info(self, path: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(Severity.INFO, path, message, hint))

    # -- keys --------------------------------------------------------------------------------
    def check_keys(
        self,
        obj: Mapping[Any, Any],
        path: str,
        allowed: Sequence[str],
        foreign: Mapping[str, tuple[str, str]],
        what: str,
        skip: Sequence[str] = (),
    ) -> None:
        for key in getattr(obj, "duplicates", ()):
            self.error(
                join(path, key),
                f'key "{key}" appears more than once',
                "keep one; runtimes silently use the last",
            )
        for key in obj:
            if not isinstance(key, str):
                self.error(path or "", f"{describe(key)} is not a valid key of {what}", "keys are strings")
                continue
            if key in allowed or key in skip:
                continue
            kpath = join(path, key)
            if key in foreign:
                message, hint = foreign[key]
                self.error(kpath, f'"{key}" {message}', hint)
            elif key == "comment" and not self.resource:
                self.comments.append(kpath)
            else:
                near = suggest(key, allowed, cutoff=0.75)
                hint = f'did you mean "{near}"?' if near else "known keys: " + ", ".join(allowed)
                self.error(kpath, f'"{key}" is not a known key of {what}', hint)

    # -- scalars -----------------------------------------------------------------------------
    def string(self, value: object, path: str, shape: str = "", *, empty_ok: bool = True) -> str | None:
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                self.error(path, f"too long: {len(value)} characters, at most {MAX_STRING} are accepted")
                return None
            if "\x00" in value:
                self.error(path, "contains a NUL character")
                return None
            if not value and not empty_ok:
                self.error(path, "must not be empty")
                return None
            return value
        extra = ""
        if isinstance(value, bool) and self.resource:
            extra = " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)"
        self.error(path, f"got {describe(value)}{extra}; {shape or 'a string is expected'}")
        return None

    def number(self, value: object, path: str, *, errno_field: bool = False) -> int | None:
        if isinstance(value, bool):
            self.error(path, f"got {describe(value)}; a number is expected")
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            hint = f"write {int(value)}" if value.is_integer() else ""
            self.error(path, f"got {describe(value)}; a whole number without decimals is expected", hint)
            return None
        if isinstance(value, str):
            if _NUMERAL.match(value) and len(value) <= 30:
                number = int(value)
                self.info(
                    path, f'is the quoted number "{value}"; written as the number {number}', "drop the quotes"
                )
                return number
            if errno_field and (named := errno_number(value)) is not None:
                self.error(
                    path,
                    f"got the errno name {quote(value)}; the runtimes need the number",
                    f"write {named} ({value.strip().upper()} on Linux)",
                )
                return None
            try:
                parsed = int(value.strip(), 0)
            except ValueError:
                self.error(path, f"got {describe(value)}; a number is expected")
                return None
            self.error(path, f"got {describe(value)}; a plain decimal number is expected", f"write {parsed}")
            return None
        self.error(path, f"got {describe(value)}; a number is expected")
        return None

    def string_list(self, value: object, path: str, shape: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            self.error(path, f"got {describe(value)}; a list is expected", f"write [{quote(value)}]")
            return ()
        if not isinstance(value, list | tuple):
            self.error(path, f"got {describe(value)}; a list of strings is expected")
            return ()
        if len(value) > MAX_ITEMS:
            self.error(path, f"too many entries: {len(value)}, at most {MAX_ITEMS} are accepted")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            text = self.string(item, f"{path}[{i}]", shape)
            if text is not None:
                out.append(text)
        return tuple(out)

    # -- structure ---------------------------------------------------------------------------
    def profile(self, obj: Mapping[Any, Any], prefix: str) -> ProfileSpec:
        what = "a SeccompProfile spec" if self.resource else "a seccomp profile"
        self.check_keys(obj, prefix, CR_KEYS if self.resource else OCI_KEYS, _FOREIGN_TOP, what)

        default_action = ""
        path = join(prefix, "defaultAction")
        if obj.get("defaultAction") is None:
            self.error(
                path,
                "required field is missing",
                'e.g. "SCMP_ACT_ERRNO" for an allow list, "SCMP_ACT_ALLOW" for a deny list',
            )
        else:
            default_action = self.string(obj["defaultAction"], path, _ACTION_SHAPE) or ""

        def optional_number(key: str, *, errno_field: bool = False) -> int | None:
            value = obj.get(key)
            return None if value is None else self.number(value, join(prefix, key), errno_field=errno_field)

        def optional_string(key: str) -> str | None:
            value = obj.get(key)
            return None if value is None else self.string(value, join(prefix, key))

        spec = ProfileSpec(
            default_action=default_action,
            default_errno_ret=optional_number("defaultErrnoRet", errno_field=True),
            architectures=self.string_list(
                obj.get("architectures"),
                join(prefix, "architectures"),
                'architectures are strings such as "SCMP_ARCH_X86_64"',
            ),
            flags=self.string_list(
                obj.get("flags"), join(prefix, "flags"), 'flags are strings such as "SECCOMP_FILTER_FLAG_LOG"'
            ),
            listener_path=optional_string("listenerPath"),
            listener_metadata=optional_string("listenerMetadata"),
            syscalls=self.rules(obj.get("syscalls"), join(prefix, "syscalls")),
        )
        if not self.resource:
            return spec
        base = optional_string("baseProfileName")
        state = optional_string("state") or c.STATE_ENABLED
        disabled = obj.get("disabled")
        if disabled is not None:
            dpath = join(prefix, "disabled")
            if not isinstance(disabled, bool):
                self.error(dpath, f"got {describe(disabled)}; true or false is expected")
            elif "state" in obj and obj["state"] is not None and (state == c.STATE_DISABLED) != disabled:
                self.error(dpath, f'contradicts state "{state}"', "set only one of them")
            elif disabled:
                state = c.STATE_DISABLED
        return ProfileSpec(
            default_action=spec.default_action,
            default_errno_ret=spec.default_errno_ret,
            architectures=spec.architectures,
            flags=spec.flags,
            listener_path=spec.listener_path,
            listener_metadata=spec.listener_metadata,
            syscalls=spec.syscalls,
            base_profile_name=base or None,
            state=state,
        )

    def rules(self, value: object, path: str) -> tuple[SyscallRule, ...]:
        rules = self._rules(value, path)
        if self.legacy:
            shown = ", ".join(p.removesuffix(".name") for p in self.legacy[:5])
            more = f" and {len(self.legacy) - 5} more" if len(self.legacy) > 5 else ""
            self.warning(
                self.legacy[0] if len(self.legacy) == 1 else path,
                f'legacy singular "name" key in {shown}{more}; containerd\'s OCI decoder ignores it, '
                "so such a "
                "rule would silently block nothing",
                'written as "names": ["..."]',
            )
        if self.comments:
            self.info(
                self.comments[0] if len(self.comments) == 1 else path,
                f'{len(self.comments)} Docker/moby "comment" key(s) dropped from the written file',
            )
        return rules

    def _rules(self, value: object, path: str) -> tuple[SyscallRule, ...]:
        if value is None:
            return ()
        if isinstance(value, Mapping):
            self.error(path, "got an object; a list of rules is expected", "wrap the rule in [ ]")
            return ()
        if not isinstance(value, list | tuple):
            self.error(path, f"got {describe(value)}; a list of rules is expected")
            return ()
        if len(value) > MAX_RULES:
            self.error(
                path,
                f"too many rules: {len(value)}, at most {MAX_RULES} are accepted",
                "merge rules with the same action",
            )
            return ()
        out: list[SyscallRule] = []
        for i, item in enumerate(value):
            rule = self.rule(item, f"{path}[{i}]")
            if rule is not None:
                out.append(rule)
        return tuple(out)

    def rule(self, item: object, path: str) -> SyscallRule | None:
        if not isinstance(item, Mapping):
            hint = 'a rule looks like {"names": ["read"], "action": "SCMP_ACT_ALLOW"}'
            self.error(path, f"got {describe(item)}; each rule is an object with names and action", hint)
            return None
        skip = () if self.resource else ("name",)
        self.check_keys(item, path, RULE_KEYS, _FOREIGN_RULE, "a syscall rule", skip)
        if self.resource and "name" in item:
            # check_keys reported it as unknown; make the fix explicit
            self.findings.pop()
            legacy = item["name"]
            example = f"names: [{quote(legacy)}]" if isinstance(legacy, str) else "names: [...]"
            self.error(
                join(path, "name"),
                'the legacy singular "name" key is not part of a SeccompProfile',
                f"write {example}",
            )
        names = self.names(item, path)

        action = ""
        apath = join(path, "action")
        if item.get("action") is None:
            self.error(apath, "required field is missing", 'e.g. "SCMP_ACT_ALLOW" or "SCMP_ACT_ERRNO"')
        else:
            action = self.string(item["action"], apath, _ACTION_SHAPE) or ""
        errno_ret = None
        if item.get("errnoRet") is not None:
            errno_ret = self.number(item["errnoRet"], join(path, "errnoRet"), errno_field=True)
        return SyscallRule(
            names=names, action=action, errno_ret=errno_ret, args=self.args(item.get("args"), path)
        )

    def names(self, item: Mapping[Any, Any], path: str) -> tuple[str, ...]:
        npath = join(path, "names")
        has_names = item.get("names") is not None
        if not self.resource and "name" in item:
            legacy = item["name"]
            lpath = join(path, "name")
            if has_names and legacy == "":
                self.warning(lpath, 'empty legacy "name" next to "names"; it is dropped')
            elif has_names:
                self.error(
                    path,
                    'both legacy "name" and "names" are set; CRI-O refuses this, containerd ignores "name"',
                    'move the name into "names" and delete "name"',
                )
                return ()
            else:
                text = self.string(legacy, lpath, 'a syscall name such as "read"', empty_ok=False)
                if text is None:
                    return ()
                self.legacy.append(lpath)
                self.names_seen += 1
                return (text,)
        if not has_names:
            if "names" in item:
                self.error(npath, "got null; a list of syscall names is expected")
            else:
                self.error(
                    path,
                    'entry has no "names"; runtimes reject it (an empty syscall name is invalid)',
                    'add "names": ["<syscall>"]',
                )
            return ()
        value = item["names"]
        if isinstance(value, str):
            self.error(npath, f"got {describe(value)}; a list is expected", f"write [{quote(value)}]")
            return ()
        if not isinstance(value, list | tuple):
            self.error(npath, f"got {describe(value)}; a list of syscall names is expected")
            return ()
        self.names_seen += len(value)
        if self.names_seen > MAX_NAMES:
            self.error(
                npath, f"the profile lists more than {MAX_NAMES} syscall names; that many cannot be right"
            )
            return ()
        out: list[str] = []
        for j, name in enumerate(value):
            text = self.string(name, f"{npath}[{j}]", 'syscall names are strings such as "read"')
            if text is not None:
                out.append(text)
        return tuple(out)

    def args(self, value: object, path: str) -> tuple[SyscallArg, ...]:
        if value is None:
            return ()
        apath = join(path, "args")
        if not isinstance(value, list | tuple):
            self.error(apath, f"got {describe(value)}; a list of argument conditions is expected")
            return ()
        if len(value) > MAX_ITEMS:
            self.error(apath, f"too many entries: {len(value)}; a syscall has at most 6 arguments")
            return ()
        out: list[SyscallArg] = []
        for k, item in enumerate(value):
            arg = self.arg(item, f"{apath}[{k}]")
            if arg is not None:
                out.append(arg)
        return tuple(out)

    def arg(self, item: object, path: str) -> SyscallArg | None:
        if not isinstance(item, Mapping):
            self.error(
                path,
                f"got {describe(item)}; an argument condition is an object",
                'e.g. {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}',
            )
            return None
        self.check_keys(item, path, ARG_KEYS, {}, "an argument condition")
        fields: dict[str, int | None] = {}
        for key in ("index", "value", "valueTwo"):
            if item.get(key) is None:
                if key != "valueTwo":
                    self.error(join(path, key), "required field is missing")
                fields[key] = None
            else:
                fields[key] = self.number(item[key], join(path, key))
        op = None
        if item.get("op") is None:
            self.error(join(path, "op"), "required field is missing", 'e.g. "SCMP_CMP_EQ"')
        else:
            op = self.string(item["op"], join(path, "op"), 'operators are strings such as "SCMP_CMP_EQ"')
        index, value = fields["index"], fields["value"]
        if index is None or value is None or op is None:
            return None
        return SyscallArg(index=index, value=value, value_two=fields["valueTwo"], op=op)


def _result(
    parser: _Parser, spec: ProfileSpec | None, partial: bool
) -> tuple[ProfileSpec | None, list[Finding]]:
    if errors(parser.findings) and not partial:
        return None, parser.findings
    return spec, parser.findings


def parse_spec(
    mapping: object, *, prefix: str = "spec", partial: bool = False
) -> tuple[ProfileSpec | None, list[Finding]]:
    """Parse a ``SeccompProfile`` resource's ``spec`` (a mapping from YAML or JSON).

    Args:
        mapping: the ``spec`` value; anything else than a mapping is an error finding.
        prefix: path prefix of the findings (``spec``).
        partial: also return the best-effort spec when errors were found, so that
            :func:`.validate.validate` can report more problems in one go.  A partial
            spec leaves out every field that had an error: never render it.

    Returns:
        ``(spec, findings)``.  ``spec`` is None when an error was found (unless ``partial``)
        or when the input is not a mapping.  Never raises for bad input.
    """
    parser = _Parser(resource=True)
    if not isinstance(mapping, Mapping):
        what = "nothing" if mapping is None else describe(mapping)
        parser.error(prefix, f"got {what}; a SeccompProfile spec is an object with at least defaultAction")
        return None, parser.findings
    return _result(parser, parser.profile(mapping, prefix), partial)


def parse_profile(
    data: object, *, prefix: str = "", partial: bool = False
) -> tuple[ProfileSpec | None, list[Finding]]:
    """Parse an already decoded bare profile (a node file or a Docker-style profile).

    Same contract as :func:`parse_spec`, with bare-JSON rules: only the OCI keys, the
    legacy singular ``name`` converted with a warning, paths without ``spec.``.
    Foreign keys (Docker ``archMap``/``includes``/``excludes``, CRI-O ``defaultErrno``/
    ``errno``) are errors because containerd would ignore them; ``comment`` is dropped
    with a warning.
    """
    parser = _Parser(resource=False)
    if isinstance(data, Mapping):
        return _result(parser, parser.profile(data, prefix), partial)
    if isinstance(data, list):
        looks_like_rules = bool(data) and all(
            isinstance(x, Mapping) and any(k in x for k in ("names", "name", "action")) for x in data
        )
        message = 'top level is a JSON array; a profile is an object with "defaultAction"'
        if looks_like_rules:
            message += ' (this looks like a list of syscall rules – put it under "syscalls")'
        parser.error(prefix, message, '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ ...your rules... ]}')
    elif isinstance(data, str):
        if _looks_like_path(data):
            parser.error(
                prefix,
                "the file contains a JSON string, not a profile; it looks like a file path",
                "pass the profile file's content, not its name",
            )
        else:
            parser.error(prefix, f"the file contains {describe(data)}, not a profile object")
    else:
        parser.error(
            prefix, f'top level is {describe(data)}; a profile is a JSON object with "defaultAction"'
        )
    return None, parser.findings


def parse_profile_json(
    text: str | bytes, *, partial: bool = False
) -> tuple[ProfileSpec | None, list[Finding]]:
    """Parse a bare profile JSON text strictly (see :func:`decode_json`, :func:`parse_profile`).

    Returns:
        ``(spec, findings)`` with paths such as ``syscalls[2].names[0]``.  Never raises
        for bad input.
    """
    data, found = decode_json(text)
    if errors(found):
        return None, found
    spec, more = parse_profile(data, partial=partial)
    return spec, [*found, *more]
