"""Files given to the offline tools: SeccompProfile resources (YAML/JSON) or bare profile JSON.

Pure: reads a file, never the network.  Everything that goes wrong becomes a
:class:`~.findings.Finding` inside :class:`InputError`, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import constants as c
from . import paths
from . import render as render_mod
from . import spec as spec_mod
from .findings import Finding, ProfileError, Severity

#: Largest file the tools read (bytes).  A 10 MB profile is already absurd.
MAX_FILE_BYTES = 32 * 1024 * 1024
#: ``apiVersion`` values whose ``SeccompProfile`` documents are read (ours and SPO's, for migration).
PROFILE_API_GROUPS = (c.GROUP, "security-profiles-operator.x-k8s.io")


class InputError(Exception):
    """A file that cannot be used; ``findings`` says why (at least one error)."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("; ".join(str(f) for f in findings))
        self.findings = findings


@dataclass
class Loaded:
    """What a file holds: SeccompProfile resources, or one bare profile (``text``)."""

    path: str
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str | None = None


def _error(message: str, path: str = "", hint: str = "") -> InputError:
    return InputError([Finding(Severity.ERROR, path, message, hint)])


def load_file(path: str) -> Loaded:
    """Read ``path`` (``-`` for standard input is not supported).

    JSON that is a SeccompProfile resource (has ``kind``) or YAML with SeccompProfile
    documents gives ``resources`` keyed by name; any other JSON is a bare profile.

    Raises:
        InputError: unreadable, too large, not JSON/YAML, or no profile inside.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _error(f"{path} is {size} bytes; the limit is {MAX_FILE_BYTES} bytes")
        data = p.read_bytes()
    except OSError as e:
        raise _error(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(f"{path} is not UTF-8 text (byte {e.start})") from None
    stripped = text.lstrip()
    if path.endswith(".json") or stripped[:1] in ("{", "[", '"'):
        value, findings = spec_mod.decode_json(text)
        if findings and any(f.severity is Severity.ERROR for f in findings):
            raise InputError(findings)
        if isinstance(value, Mapping) and "kind" in value:
            return _resources(path, [value])
        return Loaded(path, text=text)
    try:
        _check_yaml_shape(path, text)
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _error(f"{path} is neither JSON nor YAML{where}: {getattr(e, 'problem', e)}") from None
    if any(isinstance(d, list) for d in docs):
        raise _error(
            f"{path}: a YAML document is a list; a SeccompProfile resource is a mapping "
            "(apiVersion, kind, metadata, spec)",
            hint="if these are syscall rules, put them under spec.syscalls of a SeccompProfile",
        )
    if not any(isinstance(d, Mapping) for d in docs):
        # A lone string ("profiles/default.json") or number: let the JSON reader explain it.
        _, findings = spec_mod.parse_profile_json(text)
        raise InputError(findings or [Finding(Severity.ERROR, "", f"{path} holds no profile")])
    return _resources(path, docs)


#: Most YAML aliases (``*name``) read from one file: aliases of aliases grow exponentially
#: when the result is walked ("billion laughs"); real profiles use none.
MAX_YAML_ALIASES = 1000


def _check_yaml_shape(path: str, text: str) -> None:
    """Refuse YAML nested deeper than ``spec.MAX_DEPTH`` or with too many aliases, before building it.

    PyYAML's composer recurses once per nesting level (a file of ``[[[[...`` ends in a
    RecursionError after seconds); the event stream is read instead, and stops early.

    Raises:
        InputError: too deep or too many aliases.
        yaml.YAMLError: not YAML (the caller explains it).
    """
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > spec_mod.MAX_DEPTH:
                mark = event.start_mark
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                raise _error(
                    f"{path} is nested more than {spec_mod.MAX_DEPTH} levels deep{where}; "
                    "a profile needs at most 6"
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise _error(f"{path} uses more than {MAX_YAML_ALIASES} YAML aliases (*name)")


def _resources(path: str, docs: list[Any]) -> Loaded:
    loaded = Loaded(path)
    for i, doc in enumerate(docs):
        if not isinstance(doc, Mapping) or doc.get("kind") != c.PROFILE_KIND:
            continue
        group = str(doc.get("apiVersion", "")).split("/", 1)[0]
        if group not in PROFILE_API_GROUPS:
            continue
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise _error(f"document {i + 1} has no metadata.name", "metadata.name")
        for what, value in (("name", name), ("namespace", meta.get("namespace"))):
            # The agent refuses such names too; they never become paths.
            if value is not None and not _safe_component(str(value), what):
                raise _error(
                    f"metadata.{what} {value!r} is not a DNS subdomain name; refusing to use it as a path",
                    f"metadata.{what}",
                    "Kubernetes names are DNS subdomains: a-z, 0-9, '-', '.'",
                )
        loaded.resources[name] = dict(doc)
    if not loaded.resources:
        raise _error(f"{path} has no SeccompProfile resource (apiVersion {c.API_VERSION})")
    return loaded


def _safe_component(value: str, what: str) -> bool:
    try:
        paths.check_component(value, what)
    except paths.UnsafeNameError:
        return False
    return True


def render_one(loaded: Loaded, *, name: str | None = None) -> render_mod.Rendered:
    """Render the one profile of ``loaded`` (or the one called ``name``).

    Other resources of the same file serve as bases for ``baseProfileName``.

    Raises:
        InputError: the name is ambiguous or unknown, or the profile cannot render
            (its findings, errors first).
    """
    try:
        if loaded.text is not None:
            return render_mod.render_profile_json(loaded.text)
        if name is None:
            if len(loaded.resources) != 1:
                names = ", ".join(sorted(loaded.resources))
                raise _error(f"{loaded.path} holds several profiles ({names}); choose one with --name")
            name = next(iter(loaded.resources))
        doc = loaded.resources.get(name)
        if doc is None:
            raise _error(f"no SeccompProfile named {name!r} in {loaded.path}")

        def lookup(base: str) -> Mapping[str, Any] | None:
            found = loaded.resources.get(base)
            spec = found.get("spec") if found else None
            return spec if isinstance(spec, Mapping) else ({} if found else None)

        return render_mod.render_mapping(doc.get("spec"), lookup_base=lookup, name=name)
    except ProfileError as e:
        raise InputError(list(e.findings)) from None
