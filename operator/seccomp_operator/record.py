"""``seccomp-operator record``: a SeccompProfile from what a program really calls (strace).

Three ways in, one way out:

* ``record -- COMMAND [ARGS]`` runs ``strace -f -qq -o LOG -- COMMAND ARGS`` and parses LOG;
* ``record --from-log FILE`` parses an existing ``strace -f`` log or an ``strace -c`` /
  ``strace -f -c`` summary (detected from its header line);
* ``record --merge FILE...`` unions earlier recordings (profiles this command printed, other
  profiles' allow lists, or more logs): several runs, several replicas.

The output is a ``SeccompProfile`` resource rendered from the Jinja2 template
``templates/recorded-profile.yaml.j2``: one allow rule with everything seen plus the
runtime's start-up syscalls (``data/runtime-bases.json``, :func:`.validate.runtime_base`),
default action ``SCMP_ACT_ERRNO`` (EPERM unless ``--errno``; ``clone3``/``openat2`` are then
denied with ENOSYS so that glibc and runc fall back, case 005) or ``SCMP_ACT_LOG`` with
``--mode log``; annotations say how it was made (:data:`RECORDED_ANNOTATION`) and how often
each syscall was seen (:data:`COUNTS_ANNOTATION`).  ``--format json`` prints the node file
instead (rendered by :func:`.render.render_mapping`).  Every name is checked against
libseccomp's table for its architecture: names that are not syscalls there (``total``,
sysdig event names, case 002) are dropped with a warning, and a recording with nothing left
is refused (case 020).

``generate --from-strace-summary FILE --arch x86_64`` (case 018's wording) is the same
conversion with case 018's defaults: node JSON, ENOSYS as the default errno, no runtime list.

Formats (strace 6.1 manual, ``strace(1)``, and its output):

* log lines: optional ``[pid N]`` or ``N`` prefix (``-f``), optional ``-t``/``-tt``/``-ttt``/
  ``-r`` time stamp and ``-i`` instruction pointer, then ``name(args) = result``;
  ``name(args <unfinished ...>`` and later ``<... name resumed>rest`` for one call
  interrupted by another process's output (counted once); ``--- SIGCHLD {...} ---``
  signals; ``+++ exited with N +++``, ``+++ killed by SIGKILL +++``; ``restart_syscall(<...
  resuming interrupted nanosleep ...>)`` (a real syscall the kernel makes the process call);
  ``syscall_0x1c3(...)`` / ``syscall_451(...)`` for numbers strace has no name for (resolved
  with libseccomp's table for the architecture, dropped with a warning when unknown);
  ``[ Process PID=N runs in 32 bit mode. ]`` switches that process's architecture;
* summaries: a header ``% time seconds usecs/call calls errors syscall``, a dashed line,
  one row per syscall where the ``errors`` cell is empty when there were none (so rows have
  one column less), a dashed line and the ``total`` row (skipped); ``-f -c`` on a program
  that switches personality prints one table per mode after ``System call usage summary
  for 32 bit mode:``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jinja2
import yaml

from . import __version__, syscalls
from . import constants as c

#: Annotation with how the profile was made (a JSON object: tool, command, date, architecture,
#: strace version, source, mode, runtime list, merged files).
RECORDED_ANNOTATION: Final = f"{c.GROUP}/recorded"
#: Annotation with how many times each syscall was seen, per architecture (JSON object).
COUNTS_ANNOTATION: Final = f"{c.GROUP}/syscall-counts"
#: The Jinja2 template of the printed resource (package data).
TEMPLATE: Final = "recorded-profile.yaml.j2"

#: Commands whose tracing shows the client, not the container's processes (case 018).
CONTAINER_CLIENTS: Final = frozenset({"docker", "podman", "nerdctl", "crictl", "kubectl", "ctr"})
#: Syscalls that glibc (>= 2.34) and runc (>= 1.2.8) only replace by older calls on ENOSYS:
#: under an EPERM default they are denied with ENOSYS when not recorded (case 005).
ENOSYS_FALLBACKS: Final = ("clone3", "openat2")

#: Architecture a process switches to when strace says ``runs in <mode> mode``, per native arch.
_PERSONALITIES: Final[dict[str, dict[str, str]]] = {
    "SCMP_ARCH_X86_64": {"32 bit": "SCMP_ARCH_X86", "x32": "SCMP_ARCH_X32", "64 bit": "SCMP_ARCH_X86_64"},
    "SCMP_ARCH_AARCH64": {"32 bit": "SCMP_ARCH_ARM", "64 bit": "SCMP_ARCH_AARCH64"},
    "SCMP_ARCH_PPC64LE": {"32 bit": "SCMP_ARCH_PPC", "64 bit": "SCMP_ARCH_PPC64LE"},
    "SCMP_ARCH_S390X": {"32 bit": "SCMP_ARCH_S390", "64 bit": "SCMP_ARCH_S390X"},
}
#: Other spellings of architectures accepted by ``--arch`` (uname -m and Go's GOARCH).
_ARCH_ALIASES: Final[dict[str, str]] = {
    "amd64": "SCMP_ARCH_X86_64",
    "arm64": "SCMP_ARCH_AARCH64",
    "i386": "SCMP_ARCH_X86",
    "i686": "SCMP_ARCH_X86",
    "386": "SCMP_ARCH_X86",
    "armv7l": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
}

_TIME = r"(?:\d{2}:\d{2}:\d{2}(?:\.\d+)?|\d+\.\d+)"
_PREFIX = re.compile(
    rf"^\s*(?:\[pid\s+(?P<pid1>\d+)\]\s+|(?P<pid2>\d+)\s+)?(?:{_TIME}\s+)?(?:\[[0-9a-f]{{8,16}}\]\s+)?"
)
_CALL = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\(")
_RESUMED = re.compile(r"<\.\.\. (?P<name>[A-Za-z_][A-Za-z0-9_]*) resumed>")
_SIGNAL = re.compile(r"--- (?P<sig>SIG[A-Z0-9]+|stopped by SIG[A-Z0-9]+)\b")
_EXIT = re.compile(
    r"\+\+\+ (?:exited with (?P<code>\d+)|killed by (?P<sig>SIG[A-Z0-9]+)[^+]*|(?P<other>[^+]+?)) \+\+\+"
)
_MODE = re.compile(r"\[ Process PID=(?P<pid>\d+) runs in (?P<mode>32 bit|64 bit|x32) mode\. \]")
_RESULT_ERROR = re.compile(r"=\s*-1\s+(?P<err>E[A-Z0-9]+)\b")
_NUMERIC = re.compile(r"^syscall_(?:0x(?P<hex>[0-9a-f]+)|(?P<dec>\d+))$")
_SUMMARY_HEADER = re.compile(r"^\s*%\s*time\s+seconds\b.*\bsyscall\s*$|^\s*.*\bcalls\s+errors\s+syscall\s*$")
_SUMMARY_MODE = re.compile(r"System call usage summary for (?P<mode>32 bit|64 bit|x32) mode")
_DASHES = re.compile(r"^\s*-{3,}(?:\s+-{3,})*\s*$")
_EXECVE = re.compile(r'execve\("(?P<path>(?:[^"\\]|\\.)*)", \[(?P<argv>[^\]]*)\]')


class RecordError(Exception):
    """A recording that cannot become a profile: no strace, unreadable log, nothing recorded."""


@dataclass
class Recording:
    """Syscalls seen in one or more traces.

    Attributes:
        counts: per OCI architecture, how many times each syscall name was seen (calls
            started; an ``<unfinished ...>``/``resumed`` pair counts once).
        errors: per architecture, how many of those calls failed (``= -1 EXXX``).
        sources: what was read, one line each (``strace -f log of ls /``, a file name).
        has_arguments: False when a source was a summary (it lists no arguments).
        warnings: what the user should know (dropped names, processes killed by SIGSYS...).
        processes: pids seen in ``-f`` logs.
        signals: signals delivered, by name.
        commands: argv of every successful-looking ``execve`` in order (first: the traced command).
        killed: ``"pid N killed by SIGX"`` for processes that a signal ended.
    """

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    has_arguments: bool = True
    warnings: list[str] = field(default_factory=list)
    processes: set[int] = field(default_factory=set)
    signals: Counter[str] = field(default_factory=Counter)
    commands: list[list[str]] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)

    def add(self, arch: str, name: str, count: int = 1, failed: int = 0) -> None:
        """Count ``name`` ``count`` times on ``arch`` (``failed`` of them returned an error)."""
        self.counts.setdefault(arch, Counter())[name] += count
        if failed:
            self.errors.setdefault(arch, Counter())[name] += failed

    def names(self) -> set[str]:
        """Every recorded name over all architectures."""
        return {name for counter in self.counts.values() for name in counter}

    def total(self) -> int:
        """Number of calls over all architectures."""
        return sum(sum(counter.values()) for counter in self.counts.values())

    def merge(self, other: Recording) -> None:
        """Add ``other`` into this recording (counts summed, lists concatenated)."""
        for arch, counter in other.counts.items():
            self.counts.setdefault(arch, Counter()).update(counter)
        for arch, counter in other.errors.items():
            self.errors.setdefault(arch, Counter()).update(counter)
        self.sources.extend(other.sources)
        self.has_arguments = self.has_arguments and other.has_arguments
        self.warnings.extend(other.warnings)
        self.processes |= other.processes
        self.signals.update(other.signals)
        self.commands.extend(other.commands)
        self.killed.extend(other.killed)


def normalize_arch(value: str) -> str:
    """An OCI arch name from ``x86_64``, ``SCMP_ARCH_X86_64``, ``amd64``, ``aarch64``...

    Raises:
        RecordError: no such architecture (the message lists the known ones).
    """
    text = value.strip()
    candidates = [text, text.upper(), f"SCMP_ARCH_{text.upper()}", _ARCH_ALIASES.get(text.lower(), "")]
    for candidate in candidates:
        if candidate in syscalls.ARCHITECTURES:
            return candidate
    known = ", ".join(a.removeprefix("SCMP_ARCH_").lower() for a in syscalls.ARCHITECTURES)
    raise RecordError(f"unknown architecture {value!r}; known: {known}")


def is_summary(text: str) -> bool:
    """True if ``text`` is an ``strace -c`` summary table (it has the summary's header line)."""
    return any(_SUMMARY_HEADER.match(line) for line in text.splitlines()[:200])


def _canonical(arch: str, name: str, rec: Recording, dropped: Counter[str]) -> str | None:
    """The libseccomp name for a name from strace on ``arch``, or None (counted in ``dropped``)."""
    match = _NUMERIC.match(name)
    if match:
        number = int(match.group("hex"), 16) if match.group("hex") else int(match.group("dec"))
        resolved = syscalls.resolve_number(number, arch)
        if resolved is None:
            dropped[f"{name} (no syscall {number} on {arch})"] += 1
            return None
        return resolved
    if syscalls.resolve(name, arch) is None:
        dropped[f"{name} (not a syscall on {arch})"] += 1
        return None
    return name


def _report_dropped(rec: Recording, dropped: Counter[str]) -> None:
    if dropped:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(dropped.items()))
        rec.warnings.append(f"dropped names libseccomp does not know: {listed}")


def _argv_of(raw: str) -> list[str]:
    items = re.findall(r'"((?:[^"\\]|\\.)*)"', raw)
    return [bytes(item, "utf-8").decode("unicode_escape", "replace") for item in items]


def parse_strace_log(text: str, arch: str, *, source: str = "strace -f log") -> Recording:
    """Parse a raw ``strace [-f]`` log (see the module docstring for the forms handled).

    Args:
        text: the log.
        arch: the OCI architecture the traced processes started on (native of the tracer).
        source: how to name this log in the profile's annotation.

    Returns:
        The :class:`Recording`; names that libseccomp does not know on the process's
        architecture are dropped with a warning.
    """
    rec = Recording(sources=[source])
    dropped: Counter[str] = Counter()
    pending: dict[int, list[str]] = {}
    pid_arch: dict[int, str] = {}
    unparsed = 0
    modes = _PERSONALITIES.get(arch, {})
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(">"):  # blank, -k stack frames
            continue
        mode = _MODE.search(line)
        if mode:
            pid = int(mode.group("pid"))
            switched = modes.get(mode.group("mode"))
            if switched is None:
                rec.warnings.append(f"pid {pid} switched to {mode.group('mode')} mode, unknown on {arch}")
            else:
                pid_arch[pid] = switched
            continue
        if line.startswith("strace: "):
            continue
        prefix = _PREFIX.match(line)
        assert prefix is not None  # every part of the prefix is optional
        pid = int(prefix.group("pid1") or prefix.group("pid2") or 0)
        rest = line[prefix.end() :]
        if pid:
            rec.processes.add(pid)
        here = pid_arch.get(pid, arch)
        if rest.startswith("<..."):
            resumed = _RESUMED.match(rest)
            if resumed is None:
                unparsed += 1
                continue
            name = resumed.group("name")
            waiting = pending.get(pid, [])
            if name in waiting:
                waiting.remove(name)
                result_error = _RESULT_ERROR.search(rest)
                canonical = _canonical(here, name, rec, Counter()) if result_error else None
                if canonical:
                    rec.errors.setdefault(here, Counter())[canonical] += 1
                continue
            canonical = _canonical(here, name, rec, dropped)  # the start was not in the log
            if canonical:
                rec.add(here, canonical, failed=1 if _RESULT_ERROR.search(rest) else 0)
            continue
        if rest.startswith("---"):
            sig = _SIGNAL.match(rest)
            if sig:
                rec.signals[sig.group("sig").removeprefix("stopped by ")] += 1
            else:
                unparsed += 1
            continue
        if rest.startswith("+++"):
            exit_ = _EXIT.match(rest)
            if exit_ and exit_.group("sig"):
                rec.killed.append(f"pid {pid} killed by {exit_.group('sig')}")
            elif not exit_:
                unparsed += 1
            continue
        call = _CALL.match(rest)
        if call is None:
            unparsed += 1
            continue
        name = call.group("name")
        unfinished = rest.rstrip().endswith("<unfinished ...>")
        if unfinished:
            pending.setdefault(pid, []).append(name)
        canonical = _canonical(here, name, rec, dropped)
        if canonical is None:
            continue
        failed = 0 if unfinished or not _RESULT_ERROR.search(rest) else 1
        rec.add(here, canonical, failed=failed)
        if canonical == "execve" and not unfinished and " = 0" in rest:
            execve = _EXECVE.search(rest)
            if execve:
                rec.commands.append(_argv_of(execve.group("argv")) or [execve.group("path")])
    _report_dropped(rec, dropped)
    if unparsed:
        rec.warnings.append(f"{unparsed} line(s) of the log were not strace output and were skipped")
    sigsys = [k for k in rec.killed if k.endswith("SIGSYS")]
    if sigsys:
        rec.warnings.append(
            f"{', '.join(sigsys)}: a seccomp filter was already active while recording; "
            "the recording stops where it killed the process"
        )
    return rec


def parse_strace_summary(text: str, arch: str, *, source: str = "strace -c summary") -> Recording:
    """Parse an ``strace -c`` / ``strace -f -c`` summary table (see the module docstring).

    Columns are found from the header; a row with one cell less than the header has no
    ``errors`` value.  The ``total`` row, dashed lines and anything that is not a row are
    skipped.

    Raises:
        RecordError: ``text`` has no summary header.
    """
    rec = Recording(sources=[source], has_arguments=False)
    dropped: Counter[str] = Counter()
    columns: list[str] | None = None
    here = arch
    modes = _PERSONALITIES.get(arch, {})
    for line in text.splitlines():
        mode = _SUMMARY_MODE.search(line)
        if mode:
            here = modes.get(mode.group("mode"), arch)
            continue
        if _SUMMARY_HEADER.match(line):
            columns = line.replace("% time", "time").split()
            continue
        if columns is None or _DASHES.match(line) or not line.strip():
            continue
        cells = line.split()
        name = cells[-1]
        numbers = cells[:-1]
        numeric_columns = [col for col in columns if col != "syscall"]
        if (
            not numbers
            or name == "total"
            or len(numbers) not in (len(numeric_columns), len(numeric_columns) - 1)
        ):
            continue
        try:
            calls = int(numbers[numeric_columns.index("calls")])
            failed = (
                int(numbers[numeric_columns.index("errors")])
                if "errors" in numeric_columns and len(numbers) == len(numeric_columns)
                else 0
            )
        except (ValueError, IndexError):
            continue
        canonical = _canonical(here, name, rec, dropped)
        if canonical is not None:
            rec.add(here, canonical, calls, failed)
    if columns is None:
        raise RecordError("not an strace -c summary: no header line with 'calls' and 'syscall'")
    _report_dropped(rec, dropped)
    return rec


def parse_strace(text: str, arch: str, *, source: str) -> Recording:
    """:func:`parse_strace_summary` when :func:`is_summary`, else :func:`parse_strace_log`."""
    if is_summary(text):
        return parse_strace_summary(text, arch, source=f"{source} (strace -c summary)")
    return parse_strace_log(text, arch, source=f"{source} (strace -f log)")


# --------------------------------------------------------------------------- running strace


def strace_version(strace: str = "strace") -> str | None:
    """The version ``strace -V`` prints (``"6.1"``), or None when strace is not installed."""
    binary = shutil.which(strace)
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version\s+(\S+)", out)
    return match.group(1) if match else None


def client_warning(argv: Sequence[str]) -> str | None:
    """A warning when ``argv`` starts a container client (docker, podman, ...), else None (case 018)."""
    words = [w for w in argv if w not in ("sudo", "env", "exec")]
    if not words:
        return None
    tool = os.path.basename(words[0])
    if tool in CONTAINER_CLIENTS:
        return (
            f"{tool} is a container client: tracing it records the client's syscalls, not the "
            "container's. Trace the workload itself (run it on the host, or strace inside the "
            "container, or record the container in log mode and use harden)"
        )
    return None


def run_strace(
    argv: Sequence[str], log_path: Path, *, strace: str = "strace", timeout: float | None = None
) -> int:
    """Run ``strace -f -qq -o LOG_PATH -- ARGV``; return its exit status.

    The command's standard output goes to this process's standard error, so that the
    profile printed on standard output stays clean; stdin and stderr are inherited.
    strace exits with the traced command's status (or 128+signal).

    Raises:
        RecordError: strace is not installed, cannot start, or outlives ``timeout`` seconds
            (it is killed first).
    """
    binary = shutil.which(strace)
    if binary is None:
        raise RecordError(f"{strace} not found: install strace (Debian/Ubuntu: apt-get install strace)")
    try:
        proc = subprocess.Popen([binary, "-f", "-qq", "-o", str(log_path), "--", *argv], stdout=2)
    except OSError as exc:
        raise RecordError(f"cannot run {binary}: {exc.strerror or exc}") from None
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RecordError(f"{' '.join(argv)} still ran after {timeout}s under strace; killed") from None


# --------------------------------------------------------------------------- the profile


@dataclass(frozen=True)
class Options:
    """How a recording becomes a profile.

    Attributes:
        mode: ``enforce`` (``SCMP_ACT_ERRNO``) or ``log`` (``SCMP_ACT_LOG``).
        errno_ret: errno of the default action in enforce mode.
        arch: the OCI architecture the recording started on (listed first).
        runtime: ``RUNTIME[@VERSION]`` whose start-up list is merged in, or None.
    """

    mode: str = "enforce"
    errno_ret: int = errno.EPERM
    arch: str = "SCMP_ARCH_X86_64"
    runtime: str | None = "runc"


def _runtime_names(runtime: str | None) -> tuple[str, tuple[str, ...]]:
    if runtime is None:
        return "", ()
    from .validate import RuntimeSpecError, runtime_base

    try:
        base = runtime_base(runtime)
    except RuntimeSpecError as exc:
        raise RecordError(str(exc)) from None
    return f"{base.runtime}@{base.version}", base.syscalls


def build_spec(rec: Recording, opts: Options) -> tuple[dict[str, Any], str]:
    """The ``spec`` of the profile for ``rec``; and the runtime list used (``runc@1.4.0`` or "").

    Allowed: every recorded name plus the runtime's start-up names that exist on a listed
    architecture, in one ``SCMP_ACT_ALLOW`` rule (sorted).  Enforce mode: default
    ``SCMP_ACT_ERRNO`` with ``defaultErrnoRet``; when that errno is not ENOSYS, the
    :data:`ENOSYS_FALLBACKS` not allowed get an ``SCMP_ACT_ERRNO``/38 rule.  Log mode:
    default ``SCMP_ACT_LOG``, nothing denied.

    Raises:
        RecordError: nothing recorded (an empty allow list would stop every container, case 020).
    """
    recorded = rec.names()
    if not recorded:
        raise RecordError(
            "nothing was recorded (no syscall in the log): refusing to write a profile with an empty "
            "allow list, which no container could start with"
        )
    arches = [opts.arch, *sorted(a for a in rec.counts if a != opts.arch)]
    runtime_label, runtime_names = _runtime_names(opts.runtime)
    allowed = set(recorded)
    allowed.update(n for n in runtime_names if any(syscalls.resolve(n, a) is not None for a in arches))
    rules: list[dict[str, Any]] = [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]
    spec: dict[str, Any]
    if opts.mode == "log":
        spec = {"defaultAction": "SCMP_ACT_LOG", "architectures": arches}
    else:
        spec = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": opts.errno_ret, "architectures": arches}
        if opts.errno_ret != errno.ENOSYS:
            rules.append(enosys_fallback_rule(allowed, arches))
    spec["syscalls"] = [r for r in rules if r["names"]]
    return spec, runtime_label


def enosys_fallback_rule(allowed: Iterable[str], arches: Sequence[str]) -> dict[str, Any]:
    """``{"names": [...], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}`` for the fallback calls not allowed.

    ``names`` may be empty (drop the rule then).  See :data:`ENOSYS_FALLBACKS`.
    """
    have = set(allowed)
    names = [
        n
        for n in ENOSYS_FALLBACKS
        if n not in have and any(syscalls.resolve(n, a) is not None for a in arches)
    ]
    return {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}


def default_name(rec: Recording, command: Sequence[str]) -> str:
    """A DNS-label profile name: ``recorded-<program>`` from the command or the first execve."""
    argv = list(command) or (rec.commands[0] if rec.commands else [])
    words = [os.path.basename(w) for w in argv if not w.startswith("-")]
    if len(words) >= 2 and words[0] == "busybox":
        words = words[1:]
    base = re.sub(r"[^a-z0-9-]+", "-", (words[0] if words else "profile").lower()).strip("-")
    return f"recorded-{base or 'profile'}"[:63].rstrip("-")


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
#: Plain scalars YAML 1.1 (PyYAML) reads as something other than a string.
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def yaml_scalar(value: object) -> str:
    """``value`` as a YAML scalar: plain when it is an unambiguous word, else a JSON string.

    A JSON string is a valid YAML double-quoted scalar, so every value round-trips.
    """
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def _template() -> jinja2.Template:
    text = importlib.resources.files(__package__).joinpath("templates", TEMPLATE).read_text("utf-8")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=False
    )
    env.filters["yaml"] = yaml_scalar
    return env.from_string(text)


def render_resource(
    spec: Mapping[str, Any],
    *,
    name: str,
    namespace: str | None,
    annotations: Mapping[str, str],
    header: Sequence[str] = (),
) -> str:
    """The SeccompProfile YAML from the Jinja2 template; ``yaml.safe_load`` gives it back exactly.

    ``spec`` is what :func:`build_spec` returns (keys ``defaultAction``, optional
    ``defaultErrnoRet``, ``architectures``, ``syscalls`` with ``names``/``action``/
    optional ``errnoRet``).
    """
    rules = [
        {"names": list(r["names"]), "action": r["action"], "errno_ret": r.get("errnoRet")}
        for r in spec.get("syscalls", ())
    ]
    text = _template().render(
        api_version=c.API_VERSION,
        kind=c.PROFILE_KIND,
        name=name,
        namespace=namespace,
        annotations=dict(annotations),
        default_action=spec["defaultAction"],
        default_errno_ret=spec.get("defaultErrnoRet"),
        architectures=list(spec.get("architectures", ())),
        rules=rules,
        header=list(header),
    )
    return text if text.endswith("\n") else text + "\n"


def annotations_for(
    rec: Recording,
    opts: Options,
    *,
    command: Sequence[str],
    strace: str | None,
    runtime_label: str,
    merged: Sequence[str],
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """The two annotations of a recorded profile (:data:`RECORDED_ANNOTATION`, :data:`COUNTS_ANNOTATION`)."""
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    info: dict[str, Any] = {
        "tool": f"seccomp-operator record {__version__}",
        "command": list(command) or (rec.commands[0] if rec.commands else []),
        "date": when.isoformat().replace("+00:00", "Z"),
        "architecture": opts.arch,
        "strace": strace or "unknown",
        "sources": rec.sources,
        "mode": opts.mode,
        "runtime": runtime_label or "none",
        "calls": rec.total(),
    }
    if merged:
        info["merged"] = list(merged)
    if not rec.has_arguments:
        info["note"] = "from an strace -c summary: no arguments, names only"
    counts = {arch: dict(sorted(counter.items())) for arch, counter in sorted(rec.counts.items())}
    return {
        RECORDED_ANNOTATION: json.dumps(info, separators=(",", ":")),
        COUNTS_ANNOTATION: json.dumps(counts, separators=(",", ":")),
    }


def recording_from_file(path: str, arch: str) -> Recording:
    """A recording from ``--merge FILE``: a recorded profile, another profile, or strace output.

    A SeccompProfile with :data:`COUNTS_ANNOTATION` gives those counts; another profile (a
    resource or node JSON) gives the names of its allowing rules (count 0 each: unknown);
    anything else is read as strace output (:func:`parse_strace`).

    Raises:
        RecordError: unreadable file, or a profile that allows nothing by name.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    doc: Any = None
    with contextlib.suppress(yaml.YAMLError, ValueError):
        doc = yaml.safe_load(text)
    if isinstance(doc, Mapping) and ("kind" in doc or "defaultAction" in doc):
        rec = Recording(sources=[f"{path} (profile)"])
        meta = doc.get("metadata") or {}
        raw = (meta.get("annotations") or {}).get(COUNTS_ANNOTATION)
        if isinstance(raw, str):
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                for rec_arch, counter in json.loads(raw).items():
                    for name, count in counter.items():
                        rec.add(str(rec_arch), str(name), int(count))
                return rec
        spec = doc.get("spec") if "kind" in doc else doc
        for rule in (spec or {}).get("syscalls") or ():
            if rule.get("action") in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG") and not rule.get("args"):
                for name in rule.get("names") or ():
                    rec.counts.setdefault(arch, Counter())[str(name)] += 0
        if not rec.names():
            raise RecordError(f"{path}: the profile allows no syscall by name; nothing to merge")
        return rec
    return parse_strace(text, arch, source=path)


# --------------------------------------------------------------------------- CLI


def errno_arg(value: str) -> int:
    """argparse type for ``--errno``: a number 1..4094 or a name such as ``EPERM``."""
    from .spec import errno_number

    number = int(value) if value.isdigit() else errno_number(value)
    if number is None or not 1 <= number <= syscalls.MAX_LIBSECCOMP_ERRNO:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an errno (a number 1..4094 or a name such as EPERM)"
        )
    return number


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def cmd_record(args: argparse.Namespace) -> int:
    """``seccomp-operator record``: print the recorded profile; 0 done, 2 nothing usable."""
    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    try:
        arch = normalize_arch(args.arch) if args.arch else syscalls.native_arch()
        if not command and not args.from_log and not args.merge:
            raise RecordError("give a command (after --), --from-log FILE or --merge FILE...")
        if command and args.from_log:
            raise RecordError("give either a command or --from-log, not both")
        rec = Recording(sources=[])
        version: str | None = None
        if command:
            warning = client_warning(command)
            if warning:
                _warn(warning)
            version = strace_version(args.strace)
            if version is None:
                raise RecordError(f"{args.strace} not found: install strace (apt-get install strace)")
            with tempfile.TemporaryDirectory(prefix="sop-record-") as tmp:
                log = Path(tmp) / "strace.log"
                status = run_strace(command, log, strace=args.strace, timeout=args.timeout)
                text = log.read_text(encoding="utf-8", errors="replace")
            if status != 0:
                _warn(f"the command exited with status {status}; the recording may be incomplete")
            rec.merge(parse_strace_log(text, arch, source=f"strace -f of {' '.join(command)}"))
        elif args.from_log:
            try:
                text = Path(args.from_log).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise RecordError(f"cannot read {args.from_log}: {exc.strerror or exc}") from None
            rec.merge(parse_strace(text, arch, source=args.from_log))
            if rec.commands:
                warning = client_warning(rec.commands[0])
                if warning:
                    _warn(warning)
        for path in args.merge or ():
            rec.merge(recording_from_file(path, arch))
        opts = Options(
            mode=args.mode,
            errno_ret=args.errno,
            arch=arch,
            runtime=None if args.runtime in ("", "none") else args.runtime,
        )
        spec, runtime_label = build_spec(rec, opts)
    except RecordError as exc:
        print(f"seccomp-operator {args.command_name}: {exc}", file=sys.stderr)
        return 2
    for warning in rec.warnings:
        _warn(warning)
    if not rec.has_arguments:
        _warn("a summary lists syscall names only: no arguments, so no rule can be narrowed to arguments")
    if not runtime_label:
        _warn(
            "no runtime start-up list merged (--runtime none): add the syscalls your runtime's init makes "
            "after loading the filter (for example with baseProfileName), or containers will not start"
        )
    return _emit(args, rec, spec, opts, command, version, runtime_label)


def _emit(
    args: argparse.Namespace,
    rec: Recording,
    spec: dict[str, Any],
    opts: Options,
    command: Sequence[str],
    version: str | None,
    runtime_label: str,
) -> int:
    from . import render
    from .findings import ProfileError

    try:
        rendered = render.render_mapping(spec)
    except ProfileError as exc:  # a bug here: a recorded profile must always be valid
        for finding in exc.findings:
            print(str(finding), file=sys.stderr)
        return 2
    for finding in rendered.findings:
        _warn(str(finding))
    if args.format == "json":
        out = rendered.content.decode("ascii")
    else:
        name = args.name or default_name(rec, command)
        annotations = annotations_for(
            rec, opts, command=command, strace=version, runtime_label=runtime_label, merged=args.merge or ()
        )
        shown = " ".join(command) if command else ", ".join(rec.sources)
        header = [
            f"Recorded by seccomp-operator {__version__} from {shown}",
            f"{len(rec.names())} syscalls seen, {len(spec['syscalls'][0]['names'])} allowed"
            + (f" (with the {runtime_label} start-up list)" if runtime_label else ""),
        ]
        out = render_resource(
            spec, name=name, namespace=args.namespace, annotations=annotations, header=header
        )
    if args.output_file:
        Path(args.output_file).write_text(out)
    else:
        sys.stdout.write(out)
        sys.stdout.flush()
    return 0


def _common(p: argparse.ArgumentParser, *, json_default: bool) -> None:
    p.add_argument("--arch", help="architecture the trace was made on (default: this machine's)")
    p.add_argument(
        "--mode", choices=("enforce", "log"), default="enforce", help="deny (default) or only log the rest"
    )
    p.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="json" if json_default else "yaml",
        help="SeccompProfile YAML or the node file JSON",
    )
    p.add_argument("--name", help="metadata.name (default recorded-<program>)")
    p.add_argument("--namespace", help="metadata.namespace (default: none)")
    p.add_argument(
        "--errno",
        type=errno_arg,
        default=errno.ENOSYS if json_default else errno.EPERM,
        help="errno of the default action in enforce mode, number or name "
        + ("(default ENOSYS)" if json_default else "(default EPERM)"),
    )
    p.add_argument(
        "--runtime",
        default="none" if json_default else "runc",
        help="RUNTIME[@VERSION] whose start-up syscalls are merged in, or none "
        + ("(default none)" if json_default else "(default runc, newest list)"),
    )
    p.add_argument(
        "--merge", nargs="+", metavar="FILE", default=[], help="union with these recordings/profiles"
    )
    p.add_argument("-o", "--output-file", metavar="FILE", help="write here instead of standard output")


def register(subparsers: Any) -> None:
    """Add ``record`` and its case-018 alias ``generate`` to the ``seccomp-operator`` parser."""
    p = subparsers.add_parser(
        "record",
        help="record a command's syscalls with strace (or read a log) and print a SeccompProfile",
        description=(
            "Run COMMAND under strace -f (or read an strace log or strace -c summary) and print a "
            "SeccompProfile allowing what was seen plus the runtime's start-up syscalls."
        ),
    )
    _common(p, json_default=False)
    p.add_argument("--from-log", metavar="FILE", help="an existing strace -f log or strace -c summary")
    p.add_argument("--strace", default="strace", help="the strace binary (default: strace on PATH)")
    p.add_argument(
        "--timeout", type=float, default=None, help="kill the traced command after this many seconds"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    p.set_defaults(func=cmd_record, command_name="record")

    g = subparsers.add_parser(
        "generate",
        help="alias: record --from-log FILE --format json --errno ENOSYS --runtime none",
        description="Turn an strace -c summary (or strace -f log) into a node profile JSON.",
    )
    _common(g, json_default=True)
    g.add_argument("--from-strace-summary", dest="from_log", metavar="FILE", required=True)
    g.set_defaults(func=cmd_record, command_name="generate", command=[], strace="strace", timeout=None)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seccomp_operator.record record|generate ...`` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="seccomp-operator")
    register(parser.add_subparsers(dest="subcommand", required=True))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
