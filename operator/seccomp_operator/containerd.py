"""Run a busybox container under a seccomp profile with containerd and runc (``ctr run``).

Used by ``seccomp-operator demo`` to prove an installed profile on the real data
plane, and by the test suite's data-plane tests.

* :class:`Containerd` -- a reachable containerd daemon: the one on the default socket
  (``/run/containerd/containerd.sock``) when it answers ``ctr version``, otherwise a private
  daemon this process starts with its own ``--root``/``--state``/address under a temporary
  directory and stops again.
* :func:`busybox_rootfs` -- a minimal root filesystem made of ``/bin/busybox`` (which must be
  statically linked, as Debian's ``busybox-static`` is) and applet symlinks.
* :func:`run_container` -- ``ctr run --rm --rootfs --seccomp --seccomp-profile PROFILE ROOTFS ID
  ARGV...`` with a unique container id, bounded by a timeout, cleaning up leftovers on failure.
* :func:`runc_accepts` -- whether runc/libseccomp accepts a profile (loads the filter) or its
  configuration check rejects it.

Every wait is bounded: subprocesses get timeouts, and waiting for the daemon polls with a
deadline.  Containers live in the containerd namespace :data:`NAMESPACE` and their ids start
with this process's id, so cleanup never touches anything else.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Socket of a system containerd (Debian's package, ``.ci/install-dataplane.sh``).
DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
#: containerd namespace for every container these helpers create.
NAMESPACE = "seccomp-operator-test"
#: The statically linked busybox that Debian's ``busybox-static`` installs.
BUSYBOX = Path("/bin/busybox")
#: Applets linked into :func:`busybox_rootfs` by default.
DEFAULT_APPLETS: tuple[str, ...] = (
    "sh",
    "ls",
    "mkdir",
    "rmdir",
    "cat",
    "true",
    "false",
    "echo",
    "id",
    "touch",
    "rm",
    "stat",
)
#: Binaries (on ``PATH``) the data plane needs.
REQUIRED_BINARIES: tuple[str, ...] = ("containerd", "ctr", "runc", "containerd-shim-runc-v2")

#: Seconds a single ``ctr`` management call (version, ls, kill, rm) may take.
CTR_CALL_TIMEOUT = 20.0
#: Value for ctr's ``--connect-timeout``: how long ctr waits to dial the daemon.
CONNECT_TIMEOUT = "5s"

#: Markers in ctr's stderr meaning the profile was refused before the container process started:
#: runc's configuration check / filter build fails inside ``runc create`` (``OCI runtime create
#: failed: runc create failed: string SCMP_ACT_BOGUS is not a valid action for seccomp``), and ctr
#: itself refuses a file that is not JSON (``decoding seccomp profile failed``).  A profile that
#: was loaded but denies what runc or the program needs fails later, at ``runc start`` or in the
#: process itself ("cannot start a stopped process", "exec /bin/busybox: operation not
#: permitted", a non-zero exit status).
REJECTION_MARKERS: tuple[str, ...] = ("OCI runtime create failed", "decoding seccomp profile failed")

#: A profile that allows everything; used as the control run in :func:`runc_accepts`.
ALLOW_ALL_PROFILE: dict[str, object] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}


@dataclass(frozen=True)
class BindMount:
    """A host path bind-mounted into a container: ``ctr run --mount type=bind,src=S,dst=D,options=rbind:ro``.

    ``source`` and ``destination`` are absolute paths (``destination`` defaults to ``source``);
    ``readonly`` picks ``rbind:ro`` or ``rbind:rw``.  runc creates the mount point inside the
    root filesystem when it is missing (a directory, or a file when ``source`` is a file).
    """

    source: str
    destination: str | None = None
    readonly: bool = True

    def ctr_option(self) -> str:
        """The value of ctr's ``--mount`` option.

        Raises:
            ValueError: a path is relative or contains ``,`` or ``=`` (ctr splits on them).
        """
        dst = self.destination or self.source
        for path in (self.source, dst):
            if not path.startswith("/") or "," in path or "=" in path:
                raise ValueError(f"bind mount path {path!r} must be absolute and free of ',' and '='")
        return f"type=bind,src={self.source},dst={dst},options=rbind:{'ro' if self.readonly else 'rw'}"


class DataplaneError(RuntimeError):
    """The data plane itself failed (daemon not reachable, ctr misbehaving), not the profile."""


class DataplaneTimeout(DataplaneError, TimeoutError):
    """A bounded wait ran out."""


@dataclass(frozen=True)
class Result:
    """Outcome of one command.

    ``rc`` is the exit status of ``ctr`` (for ``ctr run``: the container process's status, or 1
    when ctr/runc failed before or while starting it); ``stdout``/``stderr`` are decoded text
    (the container's output and ctr's own messages are mixed on stderr); ``command`` is the argv
    that was run.
    """

    rc: int
    stdout: str
    stderr: str
    command: tuple[str, ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        """``rc == 0``."""
        return self.rc == 0

    def describe(self) -> str:
        """One human-readable block for assertion messages."""
        return f"$ {' '.join(self.command)}\nrc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


# --------------------------------------------------------------------------- prerequisites


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set to something other than ``""``/``0``/``false``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def is_static_elf(path: Path) -> bool:
    """True if ``path`` is a 64-bit little-endian ELF without a ``PT_INTERP`` program header.

    A dynamically linked busybox would not start inside :func:`busybox_rootfs`, which has no
    libraries.  Raises ``OSError`` if the file cannot be read.
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def missing_prerequisites() -> list[str]:
    """What keeps the data-plane tests from running here, one sentence per problem ([] if none)."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append(f"not root (euid {os.geteuid()}): runc needs root to create containers")
    absent = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if absent:
        problems.append(f"{', '.join(absent)} not found on PATH (install Debian's containerd and runc)")
    if not BUSYBOX.is_file():
        problems.append(f"{BUSYBOX} missing (install Debian's busybox-static)")
    elif not is_static_elf(BUSYBOX):
        problems.append(f"{BUSYBOX} is not a static x86_64 ELF (install busybox-static, not busybox)")
    return problems


# --------------------------------------------------------------------------- ctr


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", "replace")


def _run(command: Sequence[str], timeout: float) -> Result:
    """Run ``command`` in its own process group; kill the whole group if it outlives ``timeout``.

    Raises:
        DataplaneTimeout: after killing the process group.
    """
    cmd = tuple(command)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        raise DataplaneTimeout(
            f"{' '.join(cmd)} did not finish within {timeout}s; killed.\n"
            f"stdout:\n{_decode(out)}\nstderr:\n{_decode(err)}"
        ) from None
    return Result(proc.returncode, _decode(out), _decode(err), cmd)


def ctr(args: Sequence[str], *, address: str | None = None, timeout: float = CTR_CALL_TIMEOUT) -> Result:
    """Run ``ctr --address A --namespace NAMESPACE --connect-timeout 5s ARGS...``.

    ``address`` defaults to :func:`active_address`.  Returns the :class:`Result` whatever the
    exit status.

    Raises:
        DataplaneTimeout: if ctr runs longer than ``timeout`` seconds.
    """
    addr = address or active_address()
    return _run(
        ["ctr", "--address", addr, "--namespace", NAMESPACE, "--connect-timeout", CONNECT_TIMEOUT, *args],
        timeout,
    )


def daemon_answers(address: str, timeout: float = 10.0) -> bool:
    """True if ``ctr version`` gets an answer from a daemon at ``address`` within ``timeout`` seconds."""
    if not Path(address).exists():
        return False
    try:
        return ctr(["version"], address=address, timeout=timeout).ok
    except DataplaneTimeout:
        return False


# --------------------------------------------------------------------------- daemon

_CONFIG_TEMPLATE = """\
version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = {address}

[ttrpc]
  address = {ttrpc}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}
"""


class Containerd:
    """A containerd daemon that answers ``ctr``: the system one, or a private one started here.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  Attributes: ``address``
    (the gRPC socket path), ``owned`` (True if this object started the daemon), ``workdir`` and
    ``log_path`` (only for an owned daemon).
    """

    def __init__(self, *, default_address: str = DEFAULT_ADDRESS, start_timeout: float = 60.0) -> None:
        """``start_timeout``: seconds to wait for a private daemon to answer ``ctr version``."""
        self.default_address = default_address
        self.start_timeout = start_timeout
        self.address = default_address
        self.owned = False
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Containerd:
        """Make sure a daemon answers; returns ``self``.

        Uses the default socket if ``ctr version`` answers there within 10 s; otherwise starts
        ``containerd --config CFG`` with a private root, state, opt dir and socket under a new
        ``/tmp/sop-ctd-*`` directory, logging to ``containerd.log`` there, and polls ``ctr
        version`` until it answers or ``start_timeout`` seconds pass.

        Raises:
            DataplaneError: if the daemon exits early or containerd is not installed (the log
                tail is in the message).
            DataplaneTimeout: if it does not answer in time (it is stopped first).
        """
        if daemon_answers(self.default_address):
            self.address = self.default_address
            self.owned = False
            return self
        binary = shutil.which("containerd")
        if binary is None:
            raise DataplaneError("containerd is not installed and nothing answers on " + self.default_address)
        self.workdir = Path(tempfile.mkdtemp(prefix="sop-ctd-", dir="/tmp"))
        self.address = str(self.workdir / "containerd.sock")
        self.log_path = self.workdir / "containerd.log"
        config = self.workdir / "config.toml"
        config.write_text(
            _CONFIG_TEMPLATE.format(
                root=json.dumps(str(self.workdir / "root")),
                state=json.dumps(str(self.workdir / "state")),
                address=json.dumps(self.address),
                ttrpc=json.dumps(self.address + ".ttrpc"),
                opt=json.dumps(str(self.workdir / "opt")),
            )
        )
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [binary, "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.owned = True
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self._cleanup_workdir()
                raise DataplaneError(f"containerd exited with status {self._proc.returncode}; log:\n{tail}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self.log_tail()
                self.stop()
                raise DataplaneTimeout(
                    f"private containerd did not answer within {self.start_timeout}s; log:\n{tail}"
                )
            if daemon_answers(self.address, timeout=min(10.0, max(remaining, 1.0))):
                return self
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of an owned daemon's log ("" for the system daemon)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def remove_leftovers(self, timeout: float = 60.0) -> list[str]:
        """Kill and remove every container of this process in :data:`NAMESPACE`; returns their ids.

        Only ids made by :func:`new_container_id` in this process are touched.

        Raises:
            DataplaneTimeout: if the cleanup takes longer than ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        listing = ctr(["containers", "list", "--quiet"], address=self.address)
        prefix = _id_prefix()
        ids = [cid for cid in listing.stdout.split() if cid.startswith(prefix)]
        for cid in ids:
            remove_container(cid, address=self.address, timeout=max(deadline - time.monotonic(), 1.0))
        return ids

    def stop(self, timeout: float = 30.0) -> None:
        """Remove this process's leftover containers; stop the daemon if this object started it.

        The private daemon gets SIGTERM, then SIGKILL if it has not exited after ``timeout``
        seconds; its temporary directory is removed even if removing containers failed.

        Raises:
            DataplaneError / DataplaneTimeout: from :meth:`remove_leftovers` (after stopping).
        """
        try:
            if self._proc is None or self._proc.poll() is None:
                self.remove_leftovers(timeout=timeout)
        finally:
            if self._proc is not None:
                if self._proc.poll() is None:
                    self._proc.terminate()
                    try:
                        self._proc.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        self._proc.kill()
                        self._proc.wait(timeout=10)
                self._proc = None
            self._cleanup_workdir()

    def _cleanup_workdir(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            self.log_path = None

    def __enter__(self) -> Containerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(
        self,
        profile_path: Path | str,
        argv: Sequence[str],
        rootfs: Path | str,
        timeout: float = 60.0,
        *,
        mounts: Sequence[BindMount] = (),
    ) -> Result:
        """:func:`run_container` against this daemon (``mounts``: extra bind mounts)."""
        return run_container(profile_path, argv, rootfs, timeout, address=self.address, mounts=mounts)


# One daemon per test process, shared by every fixture that asks (even if the fixture is
# registered twice, e.g. in conftest.py and in a test module).
_lock = threading.Lock()
_shared: Containerd | None = None
_shared_users = 0


def acquire_containerd() -> Containerd:
    """The process-wide :class:`Containerd`, started on first use; pair with :func:`release_containerd`.

    Raises what :meth:`Containerd.start` raises.
    """
    global _shared, _shared_users
    with _lock:
        if _shared is None:
            _shared = Containerd().start()
        _shared_users += 1
        return _shared


def release_containerd() -> None:
    """Drop one reference taken by :func:`acquire_containerd`; the last one stops the daemon."""
    global _shared, _shared_users
    with _lock:
        _shared_users -= 1
        if _shared_users <= 0 and _shared is not None:
            daemon, _shared, _shared_users = _shared, None, 0
            daemon.stop()


def active_address() -> str:
    """Socket of the daemon acquired by :func:`acquire_containerd`, else :data:`DEFAULT_ADDRESS`."""
    return _shared.address if _shared is not None else DEFAULT_ADDRESS


# --------------------------------------------------------------------------- rootfs & containers


def busybox_rootfs(directory: Path | str, applets: Sequence[str] = DEFAULT_APPLETS) -> Path:
    """Build a busybox root filesystem in ``directory`` (created if needed); returns its absolute path.

    Contents: ``bin/busybox`` (a copy of :data:`BUSYBOX`), ``bin/<applet> -> busybox`` for each
    of ``applets``, empty ``proc``, ``dev``, ``sys``, ``run``, a world-writable sticky ``tmp``,
    and ``etc/passwd`` / ``etc/group`` with root only.  The container writes straight into this
    directory (``--rootfs`` bind-mounts it), so give each test its own.

    Raises:
        FileNotFoundError: if :data:`BUSYBOX` is missing.
    """
    root = Path(directory).resolve()
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in applets:
        link = root / "bin" / applet
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("busybox")
    for name in ("proc", "dev", "sys", "run", "etc", "tmp"):
        (root / name).mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


_counter = itertools.count()


def _id_prefix() -> str:
    return f"sop-{os.getpid()}-"


def new_container_id() -> str:
    """A container id unique to this call: ``sop-<pid>-<n>-<random>``."""
    return f"{_id_prefix()}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def remove_container(container_id: str, *, address: str | None = None, timeout: float = 30.0) -> None:
    """Kill the task of ``container_id`` (if any) and delete the task and container; no-op if gone.

    Raises:
        DataplaneError: if the container still exists afterwards.
        DataplaneTimeout: if a ctr call overruns the remaining part of ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(deadline - time.monotonic(), 1.0)

    if not ctr(["containers", "info", container_id], address=address, timeout=left()).ok:
        return
    ctr(["tasks", "kill", "--signal", "SIGKILL", container_id], address=address, timeout=left())
    ctr(["tasks", "delete", "--force", container_id], address=address, timeout=left())
    while True:
        gone = ctr(["containers", "delete", container_id], address=address, timeout=left())
        if not ctr(["containers", "info", container_id], address=address, timeout=left()).ok:
            return
        if time.monotonic() >= deadline:
            raise DataplaneError(f"could not remove container {container_id}: {gone.stderr.strip()}")
        time.sleep(0.2)


def run_container(
    profile_path: Path | str,
    argv: Sequence[str],
    rootfs: Path | str,
    timeout: float = 60.0,
    *,
    address: str | None = None,
    mounts: Sequence[BindMount] = (),
) -> Result:
    """Run ``argv`` in a fresh container on ``rootfs`` with the seccomp profile at ``profile_path``.

    The command is ``ctr --address A --namespace seccomp-operator-test --connect-timeout 5s run
    --rm --rootfs --seccomp --seccomp-profile PROFILE [--mount M]... ROOTFS ID ARGV...`` with a
    unique ``ID`` (:func:`new_container_id`); both paths are made absolute; one ``--mount``
    per entry of ``mounts`` (:meth:`BindMount.ctr_option`).  ``address`` defaults to
    :func:`active_address`.  Whatever happened, a container left behind is killed and removed.

    Returns the :class:`Result` (a non-zero ``rc`` is not an error here).

    Raises:
        ValueError: if ``argv`` is empty or a mount path is unusable.
        DataplaneTimeout: if the run takes longer than ``timeout`` seconds (ctr is killed and
            the container removed first).
    """
    if not argv:
        raise ValueError("argv must not be empty")
    cid = new_container_id()
    args = [
        "run",
        "--rm",
        "--rootfs",
        "--seccomp",
        "--seccomp-profile",
        str(Path(profile_path).resolve()),
        *(arg for mount in mounts for arg in ("--mount", mount.ctr_option())),
        str(Path(rootfs).resolve()),
        cid,
        *argv,
    ]
    ok = False
    try:
        result = ctr(args, address=address, timeout=timeout)
        ok = result.ok
        return result
    finally:
        if not ok:
            remove_container(cid, address=address)


def runc_accepts(
    profile_path: Path | str,
    *,
    rootfs: Path | str | None = None,
    address: str | None = None,
    timeout: float = 60.0,
) -> tuple[bool, str]:
    """Whether runc (with libseccomp) accepts the profile at ``profile_path``: ``(accepted, detail)``.

    Runs ``/bin/busybox true`` under the profile (on ``rootfs``, or a throw-away
    :func:`busybox_rootfs`).  ``accepted`` is False only if ctr/runc refused the profile before
    the container process existed (:data:`REJECTION_MARKERS`, e.g. ``runc create failed: string
    SCMP_ACT_BOGUS is not a valid action for seccomp``); ``detail`` is then the refusal text.
    Otherwise the filter was loaded: ``detail`` says whether ``true`` exited 0 or failed (the
    profile may deny what runc's final start-up steps or busybox need).

    Each run is bounded by ``timeout`` seconds.

    Raises:
        DataplaneError: if the profile looks rejected but an allow-all control profile fails
            the same way (the data plane, not the profile, is broken).
        DataplaneTimeout: from :func:`run_container`.
    """
    with tempfile.TemporaryDirectory(prefix="sop-runc-") as tmp:
        root = Path(rootfs) if rootfs is not None else busybox_rootfs(Path(tmp) / "rootfs")
        result = run_container(profile_path, ["/bin/busybox", "true"], root, timeout, address=address)
        if result.ok:
            return True, "filter loaded; busybox true exited 0"
        err = result.stderr.strip()
        if not any(marker in err for marker in REJECTION_MARKERS):
            return True, f"filter loaded; busybox true failed (rc={result.rc}): {err}"
        control_profile = Path(tmp) / "allow-all.json"
        control_profile.write_text(json.dumps(ALLOW_ALL_PROFILE))
        control = run_container(control_profile, ["/bin/busybox", "true"], root, timeout, address=address)
        if not control.ok:
            raise DataplaneError(
                "the data plane is broken, not the profile: an allow-all profile fails too.\n"
                f"profile run:\n{result.describe()}\ncontrol run:\n{control.describe()}"
            )
        return False, err


def unavailable_reason() -> str:
    """Why containers cannot be run here (empty string when they can)."""
    return "; ".join(missing_prerequisites())
