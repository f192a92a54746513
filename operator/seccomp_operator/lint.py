"""``seccomp-operator lint FILE...``: every finding about profiles, for people and CI pipelines.

Each file is a SeccompProfile resource file (YAML or JSON, several documents allowed: the
others serve as bases for ``baseProfileName``) or a bare profile JSON (a node file, a
Docker/moby or CRI-O profile).  Per document, lint reports:

- the parser's and validator's findings (:func:`.validate.check_mapping` /
  :func:`.validate.check_profile_json` semantics: strict JSON, unknown keys with a
  did-you-mean, syscall names per architecture, actions, errno ranges, notify rules,
  conflicts, deny-all profiles...);
- for a valid profile, the rendered file's findings with its base profiles merged in
  (:func:`.render.render_mapping`) and the size of the compiled BPF program against the
  kernel's 4096-instruction limit;
- for bare JSON with Docker/moby or CRI-O keys, what containerd would make of the file
  (:func:`.validate.foreign_format_findings`);
- advice only the offline tools give (:func:`.validate.advise`: syscall families denied in
  part, ``SCMP_ACT_KILL`` killing only the thread);
- with ``--runtime runc@VERSION``, the runtime's start-up syscalls the profile blocks
  (:func:`.validate.runtime_findings`, lists in ``data/runtime-bases.json``).

A YAML file holding only other Kubernetes objects (a Pod, a kind cluster) has nothing to
check: an info, not an error.

Exit codes: 0 clean (infos allowed), 1 warnings with ``--strict``, 2 errors (or an
unreadable file).  ``--output json`` prints one JSON object (see :func:`report_json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import constants as c
from . import inputs, syscalls
from . import render as render_mod
from . import validate as v
from .findings import BaseProfileMissing, Finding, ProfileError, Severity, errors
from .spec import ProfileSpec, decode_json, parse_profile, parse_profile_json, parse_spec


@dataclass
class DocumentReport:
    """The findings about one profile of one file.

    Attributes:
        file: the path as given.
        name: ``metadata.name`` of a resource; ``""`` for a bare profile JSON or a file that
            could not be read.
        kind: ``SeccompProfile``, ``profile`` (bare JSON) or ``file`` (unreadable / nothing to check).
        findings: in the order found.
        bpf_instructions: size of the compiled filter, None when it was not compiled.
    """

    file: str
    name: str
    kind: str
    findings: list[Finding] = field(default_factory=list)
    bpf_instructions: int | None = None

    @property
    def label(self) -> str:
        """``FILE NAME`` (or ``FILE``): how text output names the document."""
        return f"{self.file} {self.name}" if self.name else self.file

    @property
    def status(self) -> str:
        """``error``, ``warning`` or ``ok``."""
        if any(f.severity is Severity.ERROR for f in self.findings):
            return "error"
        if any(f.severity is Severity.WARNING for f in self.findings):
            return "warning"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "file": self.file,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "bpfInstructions": self.bpf_instructions,
            "bpfLimit": syscalls.BPF_MAXINSNS,
            "findings": [f.as_dict() for f in self.findings],
        }


def _other_manifests(path: str) -> list[str] | None:
    """The kinds in a YAML file of Kubernetes objects without any SeccompProfile, else None."""
    if path.endswith(".json"):
        return None
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text("utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not docs or not all(isinstance(d, Mapping) and isinstance(d.get("kind"), str) for d in docs):
        return None
    kinds = [str(d["kind"]) for d in docs]
    return None if c.PROFILE_KIND in kinds else kinds


def _advice(spec: ProfileSpec | None, prefix: str) -> list[Finding]:
    return v.advise(spec, prefix=prefix) if spec is not None else []


def _runtime(spec: ProfileSpec, runtime: v.RuntimeBase | None, prefix: str) -> list[Finding]:
    return v.runtime_findings(spec, runtime, prefix=prefix) if runtime is not None else []


def _merged(document: Mapping[str, Any]) -> ProfileSpec:
    spec, _ = parse_profile(document)
    assert spec is not None  # a rendered document always parses
    return spec


def lint_profile_json(path: str, text: str, runtime: v.RuntimeBase | None = None) -> DocumentReport:
    """Lint a bare profile JSON text (read from ``path``); paths without ``spec.``."""
    report = DocumentReport(path, "", "profile")
    partial, parsed = parse_profile_json(text, partial=True)
    if partial is None:
        report.findings = parsed
        return report
    found = v.combine(parsed, v.validate(partial, prefix=""))
    data, _ = decode_json(text)
    found.extend(v.foreign_format_findings(data))
    if not errors(found):
        try:
            rendered = render_mod.render_profile_json(text)
        except ProfileError as e:
            found.extend(f for f in e.findings if f not in found)
        else:
            report.bpf_instructions = rendered.bpf_instructions
            found.extend(_runtime(_merged(rendered.document), runtime, ""))
    found.extend(_advice(partial, ""))
    report.findings = found
    return report


def lint_resources(loaded: inputs.Loaded, runtime: v.RuntimeBase | None = None) -> list[DocumentReport]:
    """Lint every SeccompProfile of a loaded file; the others serve as bases (same file only)."""

    def lookup(base: str) -> Mapping[str, Any] | None:
        found = loaded.resources.get(base)
        spec = found.get("spec") if found else None
        return spec if isinstance(spec, Mapping) else ({} if found else None)

    reports = []
    for name, doc in loaded.resources.items():
        report = DocumentReport(loaded.path, name, c.PROFILE_KIND)
        raw = doc.get("spec")
        partial, parsed = parse_spec(raw, partial=True)
        found = parsed if partial is None else v.combine(parsed, v.validate(partial))
        if not errors(found):
            try:
                rendered = render_mod.render_mapping(raw, lookup_base=lookup, name=name)
            except BaseProfileMissing as e:
                missing = e.findings[0]
                found.append(
                    Finding(
                        Severity.WARNING,
                        missing.path,
                        f"{missing.message}; this file does not hold it, so the profile was checked without "
                        "its base",
                        "lint the base and this profile together (one file, several documents)",
                    )
                )
            except ProfileError as e:
                found = list(e.findings)
            else:
                found = list(rendered.findings)
                report.bpf_instructions = rendered.bpf_instructions
                found.extend(_runtime(_merged(rendered.document), runtime, "spec"))
        found.extend(_advice(partial, "spec"))
        report.findings = found
        reports.append(report)
    return reports


def lint_file(path: str, runtime: v.RuntimeBase | None = None) -> list[DocumentReport]:
    """Lint one file: one report per profile in it (one report for a file that cannot be read).

    Never raises for bad input.
    """
    kinds = _other_manifests(path)
    if kinds is not None:
        shown = ", ".join(dict.fromkeys(kinds))
        message = f"no SeccompProfile in this file ({shown}); nothing to check"
        return [DocumentReport(path, "", "file", [Finding(Severity.INFO, "", message)])]
    try:
        loaded = inputs.load_file(path)
    except inputs.InputError as e:
        return [DocumentReport(path, "", "file", list(e.findings))]
    if loaded.text is not None:
        return [lint_profile_json(path, loaded.text, runtime)]
    return lint_resources(loaded, runtime)


def exit_code(reports: Sequence[DocumentReport], *, strict: bool) -> int:
    """0 clean, 1 warnings when ``strict``, 2 errors."""
    from .cli import EXIT_ERRORS, EXIT_OK, EXIT_WARNINGS

    statuses = {r.status for r in reports}
    if "error" in statuses:
        return EXIT_ERRORS
    if strict and "warning" in statuses:
        return EXIT_WARNINGS
    return EXIT_OK


def report_text(reports: Sequence[DocumentReport]) -> str:
    """One line per finding (``FILE NAME: SEVERITY path: message``), then a status line per document."""
    lines: list[str] = []
    for r in reports:
        lines.extend(f"{r.label}: {f}" for f in r.findings)
        counts = [
            f"{n} {word}{'s' if n != 1 else ''}"
            for word, sev in (
                ("error", Severity.ERROR),
                ("warning", Severity.WARNING),
                ("info", Severity.INFO),
            )
            if (n := sum(f.severity is sev for f in r.findings))
        ]
        status = {"ok": "OK", "warning": "WARNINGS", "error": "ERRORS"}[r.status]
        detail = ", ".join(counts)
        if r.bpf_instructions is not None:
            detail += (
                f"{'; ' if detail else ''}{r.bpf_instructions} BPF instructions of {syscalls.BPF_MAXINSNS}"
            )
        lines.append(f"{r.label}: {status}" + (f" ({detail})" if detail else ""))
    return "\n".join(lines) + ("\n" if lines else "")


def report_json(reports: Sequence[DocumentReport], code: int) -> str:
    """``{"exitCode": N, "documents": [{"file", "name", "kind", "status", "bpfInstructions", "bpfLimit",
    "findings": [{"severity", "path", "message", "hint"}]}]}``."""
    return json.dumps({"exitCode": code, "documents": [r.as_dict() for r in reports]}, indent=2) + "\n"


def cmd_lint(args: argparse.Namespace) -> int:
    """``seccomp-operator lint``: print the findings of every file; exit 0/1/2."""
    from .cli import EXIT_ERRORS

    runtime = None
    if args.runtime:
        try:
            runtime = v.runtime_base(args.runtime)
        except v.RuntimeSpecError as e:
            print(f"seccomp-operator lint: --runtime: {e}", file=sys.stderr)
            return EXIT_ERRORS
    reports: list[DocumentReport] = []
    for path in args.files:
        reports.extend(lint_file(path, runtime))
    code = exit_code(reports, strict=args.strict)
    sys.stdout.write(report_json(reports, code) if args.output == "json" else report_text(reports))
    sys.stdout.flush()
    return code


def register(subparsers: Any) -> None:
    """Add ``lint`` to the ``seccomp-operator`` command (see :mod:`.cli`)."""
    p = subparsers.add_parser(
        "lint",
        help="check SeccompProfile resources and profile JSON files (exit 0 clean, 1 warnings with "
        "--strict, 2 errors)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="SeccompProfile YAML/JSON or profile JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or JSON")
    p.add_argument(
        "--runtime",
        metavar="RUNTIME@VERSION",
        help="also report the runtime's start-up syscalls the profile blocks, e.g. runc@1.3.3 "
        f"(known: {', '.join(sorted(v.runtime_bases()))})",
    )
    p.set_defaults(func=cmd_lint)
