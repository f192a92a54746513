"""The agent's own seccomp profile: record it, ship it, install it before the agent starts.

``seccomp-operator self-profile SUBCOMMAND``:

* ``exercise`` runs the agent's real code path once: the in-process API emulator
  (:mod:`.devcluster`) on loopback, and the real agent started as its own process with
  the image's entry point (the ``seccomp-operator`` console script, ``agent --server URL
  --liveness URL --metrics-port P``) against a temporary kubelet root.  It installs several
  profiles (one with a base profile, one with argument conditions, one deny-list), refuses
  an invalid one, adds one after start, updates one, disables one, deletes one (garbage
  collection at the one-second full resyncs), restores a file deleted by hand, lets the
  agent remove its node's not-ready taint and report in its SeccompNodeStatus (with its
  file watch active), reads ``/healthz`` (Kopf's liveness endpoint) and ``/metrics``,
  ``/healthz``, ``/readyz`` (the agent's metrics endpoint), then stops the agent with
  SIGTERM as the kubelet does and requires exit status 0.  The agent's own profile is
  installed into the kubelet root first and must come out untouched.  Every step waits
  for its outcome with a deadline; any miss is an error.
* ``record`` runs ``exercise`` under our strace recorder (:func:`.record.run_strace`,
  :func:`.record.parse_strace_log`) and writes the shipped profile,
  ``seccomp_operator/data/agent-seccomp.json`` (:data:`.constants.SELF_PROFILE_DATA`), and
  how it was made, ``agent-seccomp.recording.json``.  **Regenerate both from a checkout
  with** ``seccomp-operator self-profile record --runs 2`` (the union of two runs;
  ``--from-recording FILE`` rebuilds from an earlier recording without tracing, after a
  change of :data:`MARGIN` or of the runtime list).
* ``install`` (the DaemonSet's init container) writes the shipped profile to
  ``<kubelet-root>/seccomp/seccomp-operator-self/agent.json`` (:func:`self_profile_path`)
  with :mod:`.nodefs`'s atomic replacement: each directory opened relative to its parent
  with ``O_NOFOLLOW|O_DIRECTORY``, temporary file, fsync, ``rename(2)``, fsync of the
  directory; nothing written when the bytes are already there.
* ``show`` prints the shipped profile.

What the profile allows (default ``SCMP_ACT_ERRNO`` with EPERM; one ``SCMP_ACT_ALLOW``
rule built by :func:`.record.build_spec`, then the ``clone``/``clone3`` rules of
:func:`build_spec`):

1. every syscall the recording saw, in every process of the exercise: the agent, the
   ``/sbin/ldconfig -p`` that ``ctypes.util.find_library`` runs when pyseccomp looks for
   libseccomp at import (CPython ``Lib/ctypes/util.py``), and the emulator process, whose
   calls (an asyncio/aiohttp HTTP server and client) are the same kind as the agent's;
2. the container runtime's start-up list (runc: the calls its init makes after loading the
   filter up to and including ``execve`` of the entry point; ``data/runtime-bases.json``);
3. :data:`MARGIN`: calls that glibc 2.36 or CPython 3.11 make instead of, or in addition
   to, recorded ones on paths the exercise does not take on this host: vDSO fallbacks for
   the clocks, thread and memory housekeeping, the older single-purpose calls
   (``poll``, ``dup2``, ``pipe``...) that other builds use for the same job, name
   resolution over UDP, in-cluster HTTPS.  Each entry says why.  The recording host and
   the image are both Debian 12 (glibc 2.36) with a CPython 3.11 built from source (the
   image: ``python:3.11-slim-bookworm``), so the margin covers differences of patch
   release and configuration, not of libc.

``clone3`` is refused with ENOSYS (glibc then uses ``clone``) and ``clone`` is allowed only
without namespace flags (:data:`CLONE_NAMESPACE_FLAGS`).  Never allowed, checked when the
profile is built and by the tests: :func:`forbidden` (``policy.HIGH_RISK_SYSCALLS`` plus
:data:`AGENT_FORBIDDEN_EXTRA`).

The profile is recorded on x86_64 and lists ``SCMP_ARCH_X86_64`` only: the image's Python
is a 64-bit program.  Other architectures need a recording made there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import hashlib
import importlib.resources
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from . import __version__, nodefs, paths
from . import constants as c

# --------------------------------------------------------------------------- policy of the profile

#: Syscalls the agent's profile must never allow, besides ``policy.HIGH_RISK_SYSCALLS``:
#: host-wide state (clock, reboot, accounting, kernel log, I/O ports, quotas), ``chroot``,
#: and the file-handle and mount-attribute calls (the agent opens files by name only).
AGENT_FORBIDDEN_EXTRA: Final[tuple[str, ...]] = (
    "acct",
    "adjtimex",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "ioperm",
    "iopl",
    "lookup_dcookie",
    "mount_setattr",
    "name_to_handle_at",
    "quotactl",
    "reboot",
    "settimeofday",
    "syslog",
    "vhangup",
)


def forbidden() -> frozenset[str]:
    """Never allowed to the agent: ``policy.HIGH_RISK_SYSCALLS`` and :data:`AGENT_FORBIDDEN_EXTRA`."""
    from .policy import HIGH_RISK_SYSCALLS

    return frozenset(HIGH_RISK_SYSCALLS) | frozenset(AGENT_FORBIDDEN_EXTRA)


#: Syscalls allowed on top of the recording and the runtime list, each with its reason.
#: Not the calls of our own code paths (the recording always sees those), but calls that
#: glibc 2.36 and CPython 3.11 make for the same job on another kernel, build or run:
#: housekeeping whose occurrence varies between runs, vDSO fallbacks, and the sibling calls
#: chosen by build or kernel.  None of them reaches state the recorded calls cannot.
MARGIN: Final[Mapping[str, str]] = {
    # Clocks: glibc answers these from the vDSO and falls back to the syscall when the
    # kernel's clocksource has no vDSO support (vdso(7); some hypervisors).
    "clock_gettime": "vDSO fallback (clocksource without vDSO support)",
    "clock_getres": "vDSO fallback",
    "gettimeofday": "vDSO fallback",
    "time": "vDSO fallback",
    "clock_nanosleep": "sleeps on other glibc paths (nanosleep's sibling)",
    "nanosleep": "time.sleep in library code",
    # Threads, processes and memory: seen in some runs and not in others.
    "fork": "CPython's subprocess where vfork is not usable (ldconfig of ctypes.util.find_library)",
    "set_robust_list": "every new thread (glibc)",
    "rseq": "glibc >= 2.35 registers restartable sequences per thread",
    "sched_getaffinity": "os.cpu_count, thread pool sizing",
    "sched_yield": "lock contention in glibc and CPython",
    "gettid": "thread ids (logging, glibc)",
    "tgkill": "signals to threads (CPython signal handling, glibc abort)",
    "madvise": "glibc malloc trimming, thread stacks",
    "mremap": "glibc realloc of large blocks",
    "membarrier": "memory barriers some glibc/CPython builds issue",
    # Identity: getuid is recorded; site.py's user-site check also asks for these when the
    # interpreter runs outside a venv (seen recording with Debian's python3.11 that way).
    "geteuid": "getuid's sibling (site.py user-site check outside a venv)",
    "getgid": "getuid's sibling (site.py user-site check outside a venv)",
    "getegid": "getuid's sibling (site.py user-site check outside a venv)",
    # The same job, another call: chosen by build, kernel or library version.
    "poll": "urllib3's wait_for_read (kubernetes client)",
    "ppoll": "poll's sibling",
    "select": "urllib3 where poll is unavailable",
    "pselect6": "select's sibling",
    "epoll_create": "epoll_create1's older sibling",
    "epoll_pwait": "epoll_wait's sibling",
    "dup": "descriptor duplication (logging, subprocess)",
    "dup3": "dup2's sibling",
    "pipe": "pipe2's older sibling",
    "eventfd2": "asyncio and threading wake-ups on some builds",
    "fstat": "fstat where glibc does not use newfstatat",
    "statx": "glibc's stat on some configurations",
    "lstat": "older sibling of newfstatat",
    "stat": "older sibling of newfstatat",
    "readlinkat": "readlink with a directory descriptor",
    "rename": "rename without a directory descriptor",
    "renameat2": "renameat's sibling in newer glibc",
    "rmdir": "rmdir without a directory descriptor",
    "faccessat": "access's sibling",
    "faccessat2": "glibc >= 2.33 access",
    "inotify_rm_watch": "dropping a watch of the agent's file watch (inotify_add_watch is recorded)",
    "fdatasync": "fsync's sibling",
    # Name resolution when the API server is reached by host name (glibc's resolver sends
    # the A and AAAA queries together), and sockets closed by the peer or by us.
    "sendmmsg": "DNS queries (glibc resolver)",
    "recvmsg": "DNS answers, sockets",
    "sendmsg": "sockets",
    "shutdown": "closing HTTP connections",
}

#: The ``clone(2)`` flags that create namespaces (linux ``include/uapi/linux/sched.h``):
#: CLONE_NEWNS 0x00020000, CLONE_NEWCGROUP 0x02000000, CLONE_NEWUTS 0x04000000, CLONE_NEWIPC
#: 0x08000000, CLONE_NEWUSER 0x10000000, CLONE_NEWPID 0x20000000, CLONE_NEWNET 0x40000000.
#: ``clone`` is allowed only when none of them is set (``SCMP_CMP_MASKED_EQ`` with this mask
#: and 0, the rule Docker's default profile has): otherwise ``clone`` would do what the
#: forbidden ``unshare`` does.  (CLONE_NEWTIME, 0x80, only exists for ``clone3``/``unshare``.)
CLONE_NAMESPACE_FLAGS: Final = 0x7E020000
#: Syscalls whose arguments a filter cannot inspect (a pointer to a struct) and that can create
#: namespaces: refused with ENOSYS, so glibc (>= 2.34) falls back to ``clone`` for threads.
ENOSYS_ONLY: Final[tuple[str, ...]] = ("clone3",)
#: Syscalls allowed only under an argument condition (their own rule), never unconditionally.
CONDITIONAL: Final[tuple[str, ...]] = ("clone",)

# --------------------------------------------------------------------------- exercise settings

#: The node name the exercise gives its agent.
EXERCISE_NODE: Final = "exercise-node"
#: Seconds between two full resyncs of the exercised agent (production default: 60).
EXERCISE_RESYNC_SECONDS: Final = 1.0
#: Seconds each exercise step may take (generous: under strace every call is slower).
EXERCISE_STEP_TIMEOUT: Final = 90.0
#: Seconds between two polls of a step's outcome.
EXERCISE_POLL_INTERVAL: Final = 0.05
#: Seconds the agent may take to exit after SIGTERM (the DaemonSet's grace period is 30).
EXERCISE_STOP_TIMEOUT: Final = 30.0
#: Seconds one traced exercise run may take before ``record`` gives up.
RECORD_TIMEOUT: Final = 600.0
#: Lines of the agent's log quoted when a step fails.
LOG_TAIL_LINES: Final = 40


class SelfProfileError(Exception):
    """The exercise or the recording failed; the message says which step and why."""


# --------------------------------------------------------------------------- the shipped files


def shipped_bytes() -> bytes:
    """The shipped OCI profile, ``data/agent-seccomp.json``, exactly as packaged.

    Raises:
        FileNotFoundError: the package was built without its data files.
    """
    return importlib.resources.files(__package__).joinpath("data", c.SELF_PROFILE_DATA).read_bytes()


def shipped_recording() -> dict[str, Any]:
    """``data/agent-seccomp.recording.json``: how the shipped profile was made (see :func:`provenance`)."""
    text = importlib.resources.files(__package__).joinpath("data", c.SELF_PROFILE_RECORDING).read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def source_data_dir() -> Path:
    """The ``data/`` directory next to this module (in a checkout: the one to regenerate)."""
    return Path(__file__).resolve().parent / "data"


def allowed_names(document: Mapping[str, Any], *, unconditional: bool = False) -> set[str]:
    """Names in ``SCMP_ACT_ALLOW`` rules of an OCI profile or spec.

    ``unconditional``: only rules without ``args``.
    """
    return {
        str(n)
        for rule in document.get("syscalls") or ()
        if rule.get("action") == "SCMP_ACT_ALLOW" and not (unconditional and rule.get("args"))
        for n in rule.get("names") or ()
    }


# --------------------------------------------------------------------------- installing on the node


def self_profile_path(kubelet_root: str) -> PurePosixPath:
    """``<kubelet-root>/seccomp/seccomp-operator-self/agent.json``.

    The kubelet resolves ``localhostProfile`` relative to ``<kubelet-root>/seccomp``
    (Kubernetes docs, "Restrict a Container's Syscalls with seccomp"), so this is the file
    that :data:`.constants.SELF_PROFILE_LOCALHOST` names.
    """
    return paths.seccomp_root(kubelet_root) / c.SELF_PROFILE_LOCALHOST


class SelfProfileDir(nodefs.ManagedDir):
    """``<kubelet-root>/seccomp/seccomp-operator-self``, handled with :class:`.nodefs.ManagedDir`'s rules.

    Reuses its descriptor walk (the kubelet root must exist and is never created; ``seccomp``
    and ``seccomp-operator-self`` are opened relative to their parent with
    ``O_DIRECTORY|O_NOFOLLOW`` and created 0755 when missing) and its atomic replacement
    (temporary file in the same directory, fchmod 0644, fsync, ``rename(2)``, fsync of the
    directory).  Only :meth:`install` and :meth:`read_profile` are meant for this directory;
    the inherited per-namespace methods are not used here.
    """

    SUBDIR = c.SELF_PROFILE_SUBDIR

    def install(self, content: bytes) -> bool:
        """Make ``agent.json`` hold exactly ``content``; False if it already did (nothing written).

        A symlink, hard link or fifo at the name is replaced by rename, never written through.

        Raises:
            nodefs.UnsafeEntry: a directory sits at ``agent.json``, or ``seccomp`` /
                ``seccomp-operator-self`` is a symlink or not a directory.
            nodefs.NodeWriteError: the write failed (``reason`` ``NoSpace``, ``ReadOnly``,
                ``PermissionDenied``, ``IOError``); an old file is intact.
            nodefs.KubeletRootMissing: the kubelet root does not exist (nothing created).
        """
        fd = self._refresh()
        name = c.SELF_PROFILE_FILE
        if self._holds(fd, name, name, content):
            return False
        self._replace(fd, name, name, content)
        return True

    def read_profile(self) -> bytes | None:
        """The bytes of ``agent.json`` (None when absent), read without following links.

        Raises:
            nodefs.UnsafeEntry: not a regular file with one link, or over the read cap.
            nodefs.NodeFSError: another I/O failure.
        """
        fd = self._refresh()
        return self._read_regular(fd, c.SELF_PROFILE_FILE, c.SELF_PROFILE_FILE)


@dataclass(frozen=True)
class Installed:
    """Outcome of :func:`install`: the file's ``path``, whether it was ``changed``, its ``sha256``."""

    path: str
    changed: bool
    sha256: str


def install(kubelet_root: str, content: bytes | None = None) -> Installed:
    """Write ``content`` (default: the shipped profile) as the agent's profile on this node.

    Reads it back and compares before returning.

    Raises:
        SelfProfileError: ``content`` is not a JSON object with a ``defaultAction``, or the
            read-back differs.
        nodefs.NodeFSError: as :meth:`SelfProfileDir.install` (and ``KubeletRootMissing``).
    """
    data = shipped_bytes() if content is None else content
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise SelfProfileError(f"the profile to install is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "defaultAction" not in doc:
        raise SelfProfileError("the profile to install is not an OCI seccomp object (no defaultAction)")
    with SelfProfileDir(kubelet_root) as directory:
        changed = directory.install(data)
        back = directory.read_profile()
    path = str(self_profile_path(kubelet_root))
    if back != data:
        raise SelfProfileError(f"{path}: read-back differs from the bytes written")
    return Installed(path=path, changed=changed, sha256=hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------------------- the exercise scenario

_ERRNO_DEFAULT: Final[dict[str, Any]] = {"defaultAction": "SCMP_ACT_ERRNO"}


def _profile(namespace: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROFILE_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


@dataclass(frozen=True)
class Scenario:
    """What the exercise applies, and what must be on disk at the end.

    Attributes:
        namespaces: namespaces to create.
        initial: profiles applied before the agent starts (one of them invalid).
        added: a profile applied while the agent runs (a watch ``ADDED`` event).
        updated: a new body for one of ``initial`` (a watch ``MODIFIED`` event).
        disabled: key ``<ns>/<name>`` of a profile set to ``state: Disabled``.
        deleted: key of a profile deleted (no finalizer here: a watch ``DELETED`` event).
        invalid: key of the profile the agent must refuse (``Error``, no file).
        tampered: key of a profile whose file is deleted by hand and must come back.
    """

    namespaces: tuple[str, ...]
    initial: tuple[dict[str, Any], ...]
    added: dict[str, Any]
    updated: dict[str, Any]
    disabled: str
    deleted: str
    invalid: str
    tampered: str

    def final_bodies(self) -> dict[str, dict[str, Any]]:
        """Every profile as it is at the end, keyed ``<ns>/<name>`` (the deleted one left out)."""
        out: dict[str, dict[str, Any]] = {}
        for body in (*self.initial, self.added, self.updated):
            out[_key(body)] = body
        disabled = json.loads(json.dumps(out[self.disabled]))
        disabled["spec"]["state"] = c.STATE_DISABLED
        out[self.disabled] = disabled
        out.pop(self.deleted, None)
        return out

    def expected_files(self) -> dict[str, bytes]:
        """``<ns>/<name>`` -> the exact bytes the agent must have written at the end.

        Rendered with :class:`.profiles.Renderer`, bases looked up among the final bodies.
        """
        from .profiles import Renderer, snapshot_from_body

        snaps = {k: snapshot_from_body(b) for k, b in self.final_bodies().items()}
        renderer = Renderer()
        return {
            k: renderer.render(s, snaps).content for k, s in snaps.items() if s.wanted and k != self.invalid
        }

    def absent(self) -> tuple[str, ...]:
        """Keys whose file must not exist at the end: disabled, deleted, invalid."""
        return (self.disabled, self.deleted, self.invalid)


def _key(body: Mapping[str, Any]) -> str:
    meta = body["metadata"]
    return paths.profile_key(str(meta["namespace"]), str(meta["name"]))


def scenario() -> Scenario:
    """The profiles the exercise drives the agent with (two namespaces, seven profiles)."""
    base = _profile(
        "team-a",
        "base-io",
        {
            **_ERRNO_DEFAULT,
            "syscalls": [
                {"action": "SCMP_ACT_ALLOW", "names": ["read", "write", "close", "exit_group", "futex"]}
            ],
        },
    )
    web = _profile(
        "team-a",
        "web",
        {
            **_ERRNO_DEFAULT,
            "baseProfileName": "base-io",
            "syscalls": [
                {"action": "SCMP_ACT_ALLOW", "names": ["socket", "bind", "listen", "accept4"]},
                {
                    "action": "SCMP_ACT_ALLOW",
                    "names": ["personality"],
                    "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}],
                },
            ],
        },
    )
    deny = _profile(
        "team-b",
        "deny-mkdir",
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": 13, "names": ["mkdir", "mkdirat"]}],
        },
    )
    minimal = {
        **_ERRNO_DEFAULT,
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read", "write", "exit_group"]}],
    }
    doomed = _profile("team-b", "to-delete", minimal)
    switched = _profile("team-b", "to-disable", minimal)
    invalid = _profile(
        "team-a",
        "invalid",
        {
            **_ERRNO_DEFAULT,
            "syscalls": [{"action": "SCMP_ACT_ALLOW", "errnoRet": 1, "names": ["read"]}],
        },
    )
    late = _profile(
        "team-a",
        "late",
        {
            **_ERRNO_DEFAULT,
            "baseProfileName": "base-io",
            "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["getpid"]}],
        },
    )
    updated = _profile(
        "team-b",
        "deny-mkdir",
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"action": "SCMP_ACT_ERRNO", "errnoRet": 13, "names": ["mkdir", "mkdirat", "rmdir"]}
            ],
        },
    )
    return Scenario(
        namespaces=("team-a", "team-b"),
        initial=(base, web, deny, doomed, switched, invalid),
        added=late,
        updated=updated,
        disabled=_key(switched),
        deleted=_key(doomed),
        invalid=_key(invalid),
        tampered=_key(web),
    )


# --------------------------------------------------------------------------- running the exercise


def agent_command() -> list[str]:
    """How to start the agent: the ``seccomp-operator`` console script next to this Python.

    That is the image's entry point (``/opt/seccomp-operator/bin/seccomp-operator``); without
    it (a bare source tree) ``python -m seccomp_operator.cli``.
    """
    script = Path(sys.executable).parent / "seccomp-operator"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "seccomp_operator.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ExerciseReport:
    """What one exercise run did and saw (printed as JSON by ``self-profile exercise``).

    Attributes:
        kubelet_root: the temporary kubelet root the agent wrote under.
        files: ``<ns>/<name>`` -> sha256 of each expected file, as found at the end.
        absent: keys whose file was gone at the end, as required.
        steps: the steps passed, in order, with the seconds each took.
        agent_exit: the agent's exit status after SIGTERM.
        own_profile: the agent's own profile, installed first and found untouched at the end.
    """

    kubelet_root: str
    own_profile: str = ""
    files: dict[str, str] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)
    agent_exit: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "ok": True,
            "kubeletRoot": self.kubelet_root,
            "files": dict(sorted(self.files.items())),
            "absent": sorted(self.absent),
            "steps": [{"step": s, "seconds": round(t, 3)} for s, t in self.steps],
            "agentExit": self.agent_exit,
            "ownProfileUntouched": self.own_profile,
        }


class _AgentProcess:
    """The agent as a child process, its output in ``log``; killed if still running at exit."""

    def __init__(self, argv: Sequence[str], log: Path) -> None:
        self.log = log
        env = dict(os.environ)
        # What the image's Dockerfile sets for every process.
        env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"})
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def tail(self) -> str:
        """The last :data:`LOG_TAIL_LINES` lines of the agent's output ("" if unreadable)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def check_alive(self, what: str) -> None:
        """Raise :class:`SelfProfileError` (naming ``what`` was awaited) if the agent has exited."""
        code = self.proc.poll()
        if code is not None:
            raise SelfProfileError(
                f"the agent exited with status {code} while waiting for {what}; its log:\n{self.tail()}"
            )

    async def stop(self, timeout: float) -> int:
        """SIGTERM, then wait up to ``timeout`` seconds; returns the exit status.

        Raises:
            SelfProfileError: it did not exit in time (it is killed).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise SelfProfileError(f"the agent did not exit within {timeout}s of SIGTERM:\n{self.tail()}")
            await asyncio.sleep(EXERCISE_POLL_INTERVAL)  # polling the child under a deadline
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL the agent if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXERCISE_STOP_TIMEOUT)


async def _until(
    probe: Callable[[], Awaitable[Any]],
    what: str,
    agent: _AgentProcess,
    timeout: float,
) -> Any:
    """Await ``probe()`` until it returns something truthy; return it.

    Raises:
        SelfProfileError: the agent died, or ``timeout`` seconds passed (the last value and
            the agent's log tail are in the message).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        agent.check_alive(what)
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise SelfProfileError(
                f"timed out after {timeout}s waiting for {what}; last: {last!r}; agent log:\n{agent.tail()}"
            )
        await asyncio.sleep(EXERCISE_POLL_INTERVAL)  # poll interval under a deadline


def _file_bytes(kubelet_root: str, key: str) -> bytes | None:
    ns, name = paths.split_key(key)
    try:
        return Path(paths.profile_path(kubelet_root, ns, name)).read_bytes()
    except FileNotFoundError:
        return None


async def exercise(workdir: Path, *, step_timeout: float = EXERCISE_STEP_TIMEOUT) -> ExerciseReport:
    """Run the agent's code path once (see the module docstring); return what was seen.

    Args:
        workdir: an existing writable directory; the kubelet root (``workdir/kubelet``) and
            the agent's log (``workdir/agent.log``) go there.
        step_timeout: seconds each step may take.

    Raises:
        SelfProfileError: a step did not reach its outcome in time, the agent died, wrote
            other bytes than expected, touched its own profile, or did not exit with status 0
            after SIGTERM.
        nodefs.NodeFSError: installing the agent's own profile into ``workdir/kubelet`` failed.
    """
    import aiohttp

    from .devcluster import DevCluster

    plan = scenario()
    root = workdir / "kubelet"
    root.mkdir(parents=True, exist_ok=True)
    kubelet_root = str(root)
    report = ExerciseReport(kubelet_root=kubelet_root)
    expected = plan.expected_files()
    started = time.monotonic()

    def passed(step: str) -> None:
        nonlocal started
        now = time.monotonic()
        report.steps.append((step, now - started))
        started = now

    # The agent's own profile, installed as the init container does: the agent's garbage
    # collection must leave it alone (it is outside the managed directory).
    own = install(kubelet_root)
    own_before = os.stat(own.path)

    async with DevCluster() as cluster, aiohttp.ClientSession() as http:
        for ns in plan.namespaces:
            await cluster.add_namespace(ns)
        await cluster.add_node(
            EXERCISE_NODE, taints=[{"key": c.NOT_READY_TAINT_KEY, "effect": c.NOT_READY_TAINT_EFFECT}]
        )
        for body in plan.initial:
            await cluster.apply_profile(body)
        live_port, metrics_port = free_port(), free_port()
        while metrics_port == live_port:
            metrics_port = free_port()
        argv = [
            *agent_command(),
            "agent",
            f"--server={cluster.url}",
            f"--node-name={EXERCISE_NODE}",
            f"--kubelet-root={kubelet_root}",
            f"--resync-seconds={EXERCISE_RESYNC_SECONDS:g}",
            f"--liveness=http://127.0.0.1:{live_port}/healthz",
            f"--metrics-port={metrics_port}",
        ]
        agent = _AgentProcess(argv, workdir / "agent.log")
        try:
            passed("agent started")

            async def get(port: int, path: str) -> tuple[int, str] | None:
                try:
                    async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                        return resp.status, await resp.text()
                except aiohttp.ClientError:
                    return None

            def files_match(keys: Iterable[str], files: Mapping[str, bytes]) -> Callable[[], Awaitable[Any]]:
                async def probe() -> list[str] | None:
                    wrong = [k for k in keys if _file_bytes(kubelet_root, k) != files[k]]
                    return None if wrong else sorted(keys)

                return probe

            def gone(key: str) -> Callable[[], Awaitable[bool]]:
                async def probe() -> bool:
                    return _file_bytes(kubelet_root, key) is None

                return probe

            async def node_report() -> dict[str, Any]:
                body = await cluster.get_node_status(EXERCISE_NODE) or {}
                return dict(body.get("status") or {})

            async def node_states() -> dict[str, str]:
                entries = (await node_report()).get("profiles") or {}
                return {k: str(v.get("state")) for k, v in entries.items()}

            def states_are(wanted: Mapping[str, str | None]) -> Callable[[], Awaitable[Any]]:
                async def probe() -> dict[str, str] | None:
                    have = await node_states()
                    return have if all(have.get(k) == v for k, v in wanted.items()) else None

                return probe

            # 1. the initial profiles, rendered and installed; the invalid one refused.
            first_files = _render_all({_key(b): b for b in plan.initial})  # the invalid one left out
            await _until(files_match(first_files, first_files), "the initial files", agent, step_timeout)
            await _until(
                states_are({**dict.fromkeys(first_files, c.NODE_INSTALLED), plan.invalid: c.NODE_ERROR}),
                "the node report of the initial sync",
                agent,
                step_timeout,
            )
            if _file_bytes(kubelet_root, plan.invalid) is not None:
                raise SelfProfileError(f"the invalid profile {plan.invalid} was written")
            passed("initial profiles installed, invalid one refused")

            # 1b. the agent's inotify watch of the managed directory is up (where the agent
            # reports one): a filter refusing inotify would silently leave only the resync.
            async def watching() -> Any:
                watch = (await node_report()).get("fileWatch")
                return watch is None or watch.get("state") == c.FILE_WATCH_ACTIVE or None

            await _until(watching, "the agent's file watch to be active", agent, step_timeout)
            passed("file watch active")

            # 2. the endpoints: Kopf's liveness, and the agent's metrics / health / readiness.
            async def endpoints() -> bool:
                live = await get(live_port, "/healthz")
                ready = await get(metrics_port, "/readyz")
                health = await get(metrics_port, "/healthz")
                metrics = await get(metrics_port, "/metrics")
                return bool(
                    live
                    and live[0] == 200
                    and ready == (200, "ready\n")
                    and health
                    and health[0] == 200
                    and metrics
                    and metrics[0] == 200
                    and f'seccomp_agent_profiles{{node="{EXERCISE_NODE}",state="Installed"}}' in metrics[1]
                )

            await _until(endpoints, "/healthz, /readyz and /metrics", agent, step_timeout)
            passed("liveness, readiness and metrics served")

            # 3. the not-ready taint removed from the agent's own Node.
            async def untainted() -> bool:
                node = await cluster.get_node(EXERCISE_NODE) or {}
                taints = (node.get("spec") or {}).get("taints") or []
                return not any(t.get("key") == c.NOT_READY_TAINT_KEY for t in taints)

            await _until(untainted, "the not-ready taint to be removed", agent, step_timeout)
            passed("not-ready taint removed")

            # 4. changes while running: add, update, disable, delete.
            await cluster.apply_profile(plan.added)
            await cluster.apply_profile(plan.updated)
            disabled = plan.final_bodies()[plan.disabled]
            await cluster.replace_spec(*paths.split_key(plan.disabled), dict(disabled["spec"]))
            await cluster.delete_profile(*paths.split_key(plan.deleted))
            await _until(files_match(expected, expected), "added and updated files", agent, step_timeout)
            for key in (plan.disabled, plan.deleted):
                await _until(gone(key), f"{key} to be removed", agent, step_timeout)
            await _until(
                states_are({plan.disabled: c.NODE_REMOVED, plan.deleted: None}),
                "the node report after the changes",
                agent,
                step_timeout,
            )
            passed("added, updated, disabled and deleted")

            # 5. a file deleted by hand is restored by the full resync.
            ns, name = paths.split_key(plan.tampered)
            Path(paths.profile_path(kubelet_root, ns, name)).unlink()
            await _until(
                files_match([plan.tampered], expected), f"{plan.tampered} to be restored", agent, step_timeout
            )
            passed("file deleted by hand restored")

            # 6. SIGTERM, as the kubelet stops a pod; Kopf shuts down cleanly.
            report.agent_exit = await agent.stop(EXERCISE_STOP_TIMEOUT)
            if report.agent_exit != 0:
                raise SelfProfileError(
                    f"the agent exited with status {report.agent_exit} after SIGTERM:\n{agent.tail()}"
                )
            passed("agent stopped by SIGTERM with status 0")
        finally:
            agent.kill()
    own_after = os.stat(own.path)
    if Path(own.path).read_bytes() != shipped_bytes() or (own_after.st_ino, own_after.st_mtime_ns) != (
        own_before.st_ino,
        own_before.st_mtime_ns,
    ):
        raise SelfProfileError(f"{own.path}: the agent's own profile was touched")
    report.own_profile = own.path
    for key, content in expected.items():
        if _file_bytes(kubelet_root, key) != content:
            raise SelfProfileError(f"{key}: the file changed after the agent stopped")
        report.files[key] = hashlib.sha256(content).hexdigest()
    for key in plan.absent():
        if _file_bytes(kubelet_root, key) is not None:
            raise SelfProfileError(f"{key}: a file exists that must not")
        report.absent.append(key)
    return report


def _render_all(bodies: Mapping[str, Mapping[str, Any]]) -> dict[str, bytes]:
    """``<ns>/<name>`` -> rendered bytes of every valid, wanted profile among ``bodies``."""
    from .findings import ProfileError
    from .profiles import Renderer, snapshot_from_body

    snaps = {k: snapshot_from_body(b) for k, b in bodies.items()}
    renderer = Renderer()
    out: dict[str, bytes] = {}
    for k, s in snaps.items():
        with contextlib.suppress(ProfileError):
            out[k] = renderer.render(s, snaps).content
    return out


# --------------------------------------------------------------------------- recording and building


def exercise_argv(workdir: Path) -> list[str]:
    """The traced command: this Python (``-B``: no bytecode written, as in the image) running the exercise."""
    return [
        sys.executable,
        "-B",
        "-m",
        "seccomp_operator.cli",
        "self-profile",
        "exercise",
        f"--workdir={workdir}",
    ]


def build_spec(recorded: Iterable[str], arch: str) -> tuple[dict[str, Any], str, list[str]]:
    """The profile's spec from the recorded names, :data:`MARGIN` and runc's start-up list.

    Built by :func:`.record.build_spec` (default ``SCMP_ACT_ERRNO`` with EPERM; one allow
    rule), then: :data:`ENOSYS_ONLY` (``clone3``) and ``openat2`` when not allowed are
    refused with ENOSYS, so glibc and runc fall back to ``clone``/``openat``; ``clone`` is
    allowed only without namespace flags (:data:`CLONE_NAMESPACE_FLAGS`, argument 0 on
    x86_64).  Margin names that libseccomp does not know on ``arch`` are left out.

    Returns:
        ``(spec, runtime_label, margin_used)``: the SeccompProfile ``spec``, the runtime
        list merged in (``runc@1.4.2``) and the margin names that were added.

    Raises:
        SelfProfileError: nothing recorded, or a :func:`forbidden` syscall would be allowed.
    """
    from . import record, syscalls

    margin = sorted(n for n in MARGIN if syscalls.resolve(n, arch) is not None)
    names = set(recorded) | set(margin)
    rec = record.Recording(counts={arch: Counter(dict.fromkeys(names, 1))})
    try:
        spec, label = record.build_spec(
            rec, record.Options(mode="enforce", errno_ret=errno.EPERM, arch=arch, runtime="runc")
        )
    except record.RecordError as exc:
        raise SelfProfileError(str(exc)) from None
    spec["syscalls"] = _restrict_clone(spec["syscalls"])
    bad = allowed_names(spec) & forbidden()
    if bad:
        raise SelfProfileError(
            "the agent's profile would allow high-risk syscalls: "
            + ", ".join(sorted(bad))
            + " (find out which code path calls them; never ship them)"
        )
    return spec, label, margin


def _restrict_clone(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rules`` with :data:`CONDITIONAL` and :data:`ENOSYS_ONLY` moved out of the allow rules to their own.

    Returns the allow rule(s) first, then ``clone`` with its argument condition, then one
    ``SCMP_ACT_ERRNO``/ENOSYS rule with ``clone3`` and any earlier ENOSYS names.
    """
    special = set(ENOSYS_ONLY) | set(CONDITIONAL)
    out: list[dict[str, Any]] = []
    enosys: set[str] = set(ENOSYS_ONLY)
    for rule in rules:
        if rule.get("action") == "SCMP_ACT_ERRNO" and rule.get("errnoRet") == errno.ENOSYS:
            enosys.update(rule["names"])
            continue
        names = [n for n in rule["names"] if rule.get("action") != "SCMP_ACT_ALLOW" or n not in special]
        if names:
            out.append({**rule, "names": names})
    out.append(
        {
            "names": list(CONDITIONAL),
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        }
    )
    out.append({"names": sorted(enosys), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    return out


def render_spec(spec: Mapping[str, Any]) -> bytes:
    """The node file bytes of ``spec`` (:func:`.render.render_mapping`).

    Raises:
        SelfProfileError: the spec does not validate (a bug: the findings are in the message).
    """
    from . import render
    from .findings import ProfileError

    try:
        return render.render_mapping(spec).content
    except ProfileError as exc:
        raise SelfProfileError("; ".join(str(f) for f in exc.findings)) from None


def provenance(
    *,
    recorded: Mapping[str, int],
    arch: str,
    runtime_label: str,
    margin: Sequence[str],
    content: bytes,
    recording: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``agent-seccomp.recording.json`` document.

    Keys: ``tool``; ``recording`` (``command``, ``date``, ``runs``, ``strace``, ``python``,
    ``libc``, ``kernel``, ``machine``: where and how the trace was made); ``architecture``;
    ``recorded`` (name -> calls seen); ``runtime`` (the start-up list merged in);
    ``margin`` (name -> reason, those added); ``allowed`` (count); ``sha256`` of the profile.
    """
    return {
        "tool": f"seccomp-operator self-profile record {__version__}",
        "recording": dict(recording),
        "architecture": arch,
        "recorded": dict(sorted(recorded.items())),
        "runtime": runtime_label,
        "margin": {n: MARGIN[n] for n in margin},
        "allowed": len(allowed_names(json.loads(content))),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def spec_from_recording(info: Mapping[str, Any]) -> dict[str, Any]:
    """The spec from an ``agent-seccomp.recording.json`` document, with today's margin and runtime list.

    Raises:
        SelfProfileError: as :func:`build_spec`; or the document has no ``recorded`` names.
    """
    recorded = info.get("recorded")
    if not isinstance(recorded, Mapping) or not recorded:
        raise SelfProfileError("the recording has no 'recorded' syscalls")
    spec, _, _ = build_spec(recorded, str(info.get("architecture") or "SCMP_ARCH_X86_64"))
    return spec


def _libc() -> str:
    name, version = platform.libc_ver()
    return f"{name} {version}".strip() or "unknown"


def record_exercise(*, runs: int, timeout: float, strace: str) -> tuple[dict[str, int], dict[str, Any], str]:
    """Run the exercise ``runs`` times under ``strace -f``; union what was seen.

    Returns:
        ``(counts, recording_info, arch)``: calls per syscall name over all runs, the
        ``recording`` part of :func:`provenance`, and the OCI architecture.

    Raises:
        SelfProfileError: strace missing, an exercise run failed, a process was killed by
            SIGSYS (a filter was already active), or a 32-bit process appeared.
    """
    from . import record, syscalls

    version = record.strace_version(strace)
    if version is None:
        raise SelfProfileError(f"{strace} not found: install strace (apt-get install strace)")
    arch = syscalls.native_arch()
    total = record.Recording()
    command: list[str] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="sop-self-record-") as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            log = Path(tmp) / "strace.log"
            command = exercise_argv(work)
            try:
                status = record.run_strace(command, log, strace=strace, timeout=timeout)
            except record.RecordError as exc:
                raise SelfProfileError(str(exc)) from None
            if status != 0:
                raise SelfProfileError(
                    f"exercise run {run + 1} failed with status {status} (its output is above)"
                )
            text = log.read_text(encoding="utf-8", errors="replace")
        rec = record.parse_strace_log(text, arch, source=f"strace -f of the exercise, run {run + 1}")
        sigsys = [k for k in rec.killed if k.endswith("SIGSYS")]
        if sigsys:
            raise SelfProfileError(f"{', '.join(sigsys)}: a seccomp filter was active while recording")
        total.merge(rec)
    other = sorted(a for a in total.counts if a != arch)
    if other:
        raise SelfProfileError(f"processes of other architectures were traced ({', '.join(other)})")
    counts = dict(total.counts.get(arch, Counter()))
    info = {
        "command": [Path(command[0]).name, *command[1:-1], "--workdir=TMP"] if command else [],
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "runs": runs,
        "strace": version,
        "python": platform.python_version(),
        "libc": _libc(),
        "kernel": platform.release(),
        "machine": platform.machine(),
    }
    return counts, info, arch


def write_outputs(profile_path: Path, recording_path: Path, content: bytes, info: Mapping[str, Any]) -> None:
    """Write the profile and its recording document (plain writes: these are source files)."""
    profile_path.write_bytes(content)
    recording_path.write_text(json.dumps(info, indent=2, sort_keys=False) + "\n")


# --------------------------------------------------------------------------- CLI


def cmd_exercise(args: argparse.Namespace) -> int:
    """``self-profile exercise``: 0 when every step passed (report on stdout), 1 otherwise."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # The emulator's own chatter is not the exercise's business.
    logging.getLogger("aiohttp.access").setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sop-self-exercise-")))
        try:
            report = asyncio.run(exercise(workdir, step_timeout=args.step_timeout))
        except SelfProfileError as exc:
            print(f"seccomp-operator self-profile exercise: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """``self-profile record``: write the profile and its recording document; 0 done, 2 failed."""
    out = Path(args.output) if args.output else source_data_dir() / c.SELF_PROFILE_DATA
    rec_out = (
        Path(args.recording_output) if args.recording_output else out.with_name(c.SELF_PROFILE_RECORDING)
    )
    try:
        if args.from_recording:
            old = json.loads(Path(args.from_recording).read_text())
            counts = {str(k): int(v) for k, v in (old.get("recorded") or {}).items()}
            info, arch = dict(old.get("recording") or {}), str(old.get("architecture") or "")
            if not counts or not arch:
                raise SelfProfileError(f"{args.from_recording}: no 'recorded' syscalls or 'architecture'")
        else:
            counts, info, arch = record_exercise(runs=args.runs, timeout=args.timeout, strace=args.strace)
        spec, label, margin = build_spec(counts, arch)
        content = render_spec(spec)
    except (SelfProfileError, OSError, ValueError) as exc:
        print(f"seccomp-operator self-profile record: {exc}", file=sys.stderr)
        return 2
    doc = provenance(
        recorded=counts, arch=arch, runtime_label=label, margin=margin, content=content, recording=info
    )
    write_outputs(out, rec_out, content, doc)
    from .validate import runtime_base

    only_margin = allowed_names(spec) - set(counts) - set(runtime_base("runc").syscalls)
    print(
        f"{out}: {doc['allowed']} syscalls allowed ({len(counts)} recorded, {label} start-up list, "
        f"{len(only_margin)} only from the margin); {rec_out}: how it was made",
        file=sys.stderr,
    )
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    """``self-profile install``: 0 installed (or already there), 2 failed."""
    try:
        result = install(args.kubelet_root)
    except (SelfProfileError, nodefs.NodeFSError, OSError) as exc:
        print(f"seccomp-operator self-profile install: {exc}", file=sys.stderr)
        return 2
    state = "written" if result.changed else "already up to date"
    print(f"{result.path}: {state} (sha256 {result.sha256})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``self-profile show``: print the shipped profile (or its recording document)."""
    if args.recording:
        sys.stdout.write(json.dumps(shipped_recording(), indent=2) + "\n")
    else:
        sys.stdout.buffer.write(shipped_bytes())
    sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    """Add ``self-profile`` (``record``, ``exercise``, ``install``, ``show``) to the main parser."""
    p = subparsers.add_parser(
        "self-profile",
        help="the agent's own seccomp profile: record, install on the node, show",
        description=(
            "The agent runs under a Localhost seccomp profile recorded from its own code path and "
            "shipped in the package; an init container installs it before the agent starts."
        ),
    )
    sub = p.add_subparsers(dest="self_command", required=True)

    r = sub.add_parser(
        "record",
        help="run the exercise under strace and write the shipped profile (from a checkout)",
        description=(
            "Run `self-profile exercise` under strace -f, add runc's start-up syscalls and the "
            "documented margin, refuse high-risk syscalls, and write the OCI profile and a JSON "
            "document saying how it was made."
        ),
    )
    r.add_argument(
        "-o",
        "--output",
        help=f"profile file (default: {c.SELF_PROFILE_DATA} in this package's data directory)",
    )
    r.add_argument(
        "--recording-output", help=f"recording document (default: {c.SELF_PROFILE_RECORDING} next to -o)"
    )
    r.add_argument("--runs", type=int, default=1, help="exercise runs to union (default 1)")
    r.add_argument(
        "--timeout",
        type=float,
        default=RECORD_TIMEOUT,
        help=f"seconds one traced run may take (default {RECORD_TIMEOUT:g})",
    )
    r.add_argument("--strace", default="strace", help="the strace binary (default: strace on PATH)")
    r.add_argument(
        "--from-recording",
        metavar="FILE",
        help="no tracing: rebuild from the recorded syscalls of an earlier recording document",
    )
    r.set_defaults(func=cmd_record)

    e = sub.add_parser(
        "exercise",
        help="run the agent's code path once against the in-process API emulator",
        description=(
            "Start the API emulator on loopback and the real agent process against a temporary "
            "kubelet root; install, update, disable and delete profiles, read the endpoints, stop "
            "the agent with SIGTERM.  Prints a JSON report; exit 0 when every step passed."
        ),
    )
    e.add_argument("--workdir", help="where the kubelet root and agent.log go (default: a temp dir)")
    e.add_argument(
        "--step-timeout",
        type=float,
        default=EXERCISE_STEP_TIMEOUT,
        help=f"seconds each step may take (default {EXERCISE_STEP_TIMEOUT:g})",
    )
    e.set_defaults(func=cmd_exercise)

    i = sub.add_parser(
        "install",
        help="write the shipped profile to <kubelet-root>/seccomp/" + c.SELF_PROFILE_LOCALHOST,
        description=(
            "Write the shipped agent profile atomically (no symlink followed) where the kubelet "
            f"finds localhostProfile {c.SELF_PROFILE_LOCALHOST}; the DaemonSet's init container."
        ),
    )
    i.add_argument(
        "--kubelet-root",
        default=os.environ.get("KUBELET_ROOT", c.DEFAULT_KUBELET_ROOT),
        help=f"the kubelet's --root-dir (default {c.DEFAULT_KUBELET_ROOT})",
    )
    i.set_defaults(func=cmd_install)

    s = sub.add_parser("show", help="print the shipped profile")
    s.add_argument("--recording", action="store_true", help="print how it was made instead")
    s.set_defaults(func=cmd_show)
