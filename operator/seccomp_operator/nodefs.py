"""The node-side file layer: seccomp profile files below the kubelet root, written safely.

The agent on each node keeps one directory, ``<kubelet-root>/seccomp/seccomp-operator``
(:func:`paths.managed_dir`), with one file per profile at
``<namespace>/<name>.json`` (:func:`paths.localhost_profile`).  The kubelet hands
``<kubelet-root>/seccomp/<localhostProfile>`` to the container runtime, so whatever
is at that path is what containers get.  This module is the only code that touches it.

Rules it keeps, and where they come from:

* **Never follow a symlink below the kubelet root.**  Each component
  (``seccomp``, ``seccomp-operator``, the namespace directory, the file) is opened
  on its own with ``O_NOFOLLOW`` relative to the file descriptor of its parent
  (openat(2): ``O_NOFOLLOW`` fails with ``ELOOP`` when the last component is a
  symbolic link; ``O_DIRECTORY`` fails with ``ENOTDIR`` when it is not a
  directory).  Since every name is a single checked component
  (:func:`paths.check_component`), no symlink is ever resolved.  The kubelet root
  itself is configuration and may be a symlink (``/var/lib/kubelet -> /data/...``).
* **Never create the kubelet root.**  A fresh ``/var/lib/kubelet/seccomp`` tree on a
  node whose kubelet runs with another ``--root-dir`` is silently ignored by that
  kubelet; :class:`KubeletRootMissing` says so instead.
* **Atomic, durable replacement.**  A profile is written to a temporary file in the
  same directory, fsynced, then renamed over the final name; rename(2) replaces
  the destination atomically (readers see the old or the new file, never a mix)
  and replaces a symlink at the destination rather than writing through it.  The
  directory is fsynced afterwards because the rename is only durable once the
  directory entry is on disk (fsync(2): "calling fsync() does not necessarily
  ensure that the entry in the directory containing the file has also reached
  disk. For that an explicit fsync() on a file descriptor for the directory is
  also needed").
* **Distrust what is found.**  Reads refuse symlinks, non-regular files and regular
  files with more than one hard link (a planted hard link may share its inode with
  ``/etc/passwd`` or with another profile), and are capped at :data:`READ_CAP`.

All side effects go through an :class:`Ops` object so tests can inject ``ENOSPC``,
``EROFS`` and friends at a chosen step.

**Watching for changes** (:class:`DirWatch`).  The agent also asks the kernel to tell it
when anything changes in the managed directory and its namespace directories (inotify(7)),
so that a file deleted, truncated or rewritten by hand is restored within milliseconds
instead of at the next full resync.  Events are only *hints*: each one makes the agent
re-check one profile's file through the same descriptor-relative, non-following calls
as above, never act on a path the event names.  Watches are added on directories the
agent opened itself (``O_DIRECTORY|O_NOFOLLOW`` relative to their parent) by naming the
open descriptor as ``/proc/self/fd/N``: the kernel resolves that "magic link" to the
open file itself, not by walking a path again (symlink(7), "magic links"; openat2(2),
``RESOLVE_NO_MAGICLINKS``), so a directory swapped for a symlink between the open and
the watch is not what gets watched.  Watches are never recursive and never cross a
symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Final, Literal, Self

from . import constants as c
from . import paths

if TYPE_CHECKING:  # imported when a watch is made: asyncinotify runs ldconfig(8) at import
    from asyncinotify import Event, Inotify, Watch

# --- Reasons (short, stable tokens for metrics and status) -----------------------------
REASON_NO_SPACE: Final = "NoSpace"
REASON_READ_ONLY: Final = "ReadOnly"
REASON_PERMISSION_DENIED: Final = "PermissionDenied"
REASON_UNSAFE_ENTRY: Final = "UnsafeEntry"
REASON_IO_ERROR: Final = "IOError"
REASON_KUBELET_ROOT_MISSING: Final = "KubeletRootMissing"

#: Largest file :meth:`ManagedDir.read` returns; a planted huge file is refused, not loaded.
READ_CAP: Final = 16 * 1024 * 1024

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TEMP_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK: Final = 1024 * 1024
#: Where the kernel shows this process's open descriptors as magic links (proc(5)).
PROC_SELF_FD: Final = "/proc/self/fd"

AnomalyKind = Literal["symlink", "hardlink", "not-a-file", "stray", "temp"]


def reason_for_errno(err: int | None) -> str:
    """Map an ``errno`` value to a reason token.

    ``ENOSPC``/``EDQUOT`` → ``NoSpace``; ``EROFS`` → ``ReadOnly``;
    ``EACCES``/``EPERM`` → ``PermissionDenied``; ``ELOOP``/``ENOTDIR``/``EISDIR``
    (something other than what we expect sits at a name) → ``UnsafeEntry``;
    anything else, including ``None`` → ``IOError``.
    """
    if err in (errno.ENOSPC, errno.EDQUOT):
        return REASON_NO_SPACE
    if err == errno.EROFS:
        return REASON_READ_ONLY
    if err in (errno.EACCES, errno.EPERM):
        return REASON_PERMISSION_DENIED
    if err in (errno.ELOOP, errno.ENOTDIR, errno.EISDIR):
        return REASON_UNSAFE_ENTRY
    return REASON_IO_ERROR


# --- Errors ---------------------------------------------------------------------------------
class NodeFSError(Exception):
    """A file-system operation on the node failed.

    Raised as such by :meth:`ManagedDir.read` and :meth:`ManagedDir.scan` for
    plain I/O failures; changes raise the subclass :class:`NodeWriteError`.

    Attributes:
        reason: short stable token (``NoSpace``, ``ReadOnly``, ``PermissionDenied``,
            ``UnsafeEntry``, ``IOError``, ``KubeletRootMissing``) for metrics and status.
        message: human-readable, names the path.
        path: absolute path concerned (for reporting only; never used to open anything).
    """

    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path


class NodeWriteError(NodeFSError):
    """Writing, creating or removing something under the managed directory failed.

    The previous file (if any) is intact and no temporary file is left behind,
    except when only the final directory fsync failed (the message says so).
    """


class UnsafeEntry(NodeWriteError):
    """Something other than what we would have written sits at one of our names.

    A symlink, a hard link, a fifo, a directory where a file belongs, a file where a
    directory belongs, or an oversized file.  ``reason`` is always ``UnsafeEntry``;
    the message says what was found.  A subclass of :class:`NodeWriteError` so a
    caller of :meth:`ManagedDir.write` handles every failure with one ``except``.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(REASON_UNSAFE_ENTRY, message, path)


class KubeletRootMissing(NodeFSError):
    """The configured kubelet root does not exist or is not a directory.

    Attributes:
        path: the kubelet root that was checked.
        candidates_present: those of the given candidate roots that are existing
            directories (the kubelet probably uses one of them).
    """

    def __init__(
        self, path: str, candidates_present: Sequence[str], candidates_checked: Sequence[str]
    ) -> None:
        if candidates_present:
            hint = "existing candidate kubelet roots: " + ", ".join(candidates_present)
        elif candidates_checked:
            hint = "none of the candidates exist either: " + ", ".join(candidates_checked)
        else:
            hint = "no candidates were given"
        message = (
            f"kubelet root {path} does not exist or is not a directory; not creating it "
            f"(the kubelet would not read profiles there). Set the node label "
            f"{c.KUBELET_ROOT_LABEL} or the agent's kubelet root to the kubelet's --root-dir; {hint}"
        )
        super().__init__(REASON_KUBELET_ROOT_MISSING, message, path)
        self.candidates_present = tuple(candidates_present)


# --- Side-effect seam ------------------------------------------------------------------------------
class Ops:
    """Thin wrappers around the ``os`` calls :class:`ManagedDir` makes.

    Tests subclass it (or monkeypatch an instance) to raise ``OSError`` at a chosen
    step.  Every method is a direct call of the ``os`` function of the same name.
    """

    def open(self, name: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        """os.open."""
        return os.open(name, flags, mode, dir_fd=dir_fd)

    def close(self, fd: int) -> None:
        """os.close."""
        os.close(fd)

    def fstat(self, fd: int) -> os.stat_result:
        """os.fstat."""
        return os.fstat(fd)

    def lstat_at(self, name: str, dir_fd: int) -> os.stat_result:
        """os.stat(name, dir_fd=..., follow_symlinks=False) (fstatat(2) with AT_SYMLINK_NOFOLLOW)."""
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    def readlink_at(self, name: str, dir_fd: int) -> str:
        """os.readlink relative to a directory fd."""
        return os.readlink(name, dir_fd=dir_fd)

    def mkdir(self, name: str, mode: int, dir_fd: int) -> None:
        """os.mkdir relative to a directory fd."""
        os.mkdir(name, mode, dir_fd=dir_fd)

    def fchmod(self, fd: int, mode: int) -> None:
        """os.fchmod."""
        os.fchmod(fd, mode)

    def write(self, fd: int, data: memoryview) -> int:
        """os.write (may write fewer bytes than given)."""
        return os.write(fd, data)

    def read(self, fd: int, size: int) -> bytes:
        """os.read."""
        return os.read(fd, size)

    def fsync(self, fd: int) -> None:
        """os.fsync of a file."""
        os.fsync(fd)

    def fsync_dir(self, fd: int) -> None:
        """os.fsync of a directory (makes renames, creations and unlinks in it durable)."""
        os.fsync(fd)

    def rename(self, src: str, dst: str, dir_fd: int) -> None:
        """os.rename within one directory fd (renameat(2))."""
        os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    def unlink(self, name: str, dir_fd: int) -> None:
        """os.unlink relative to a directory fd (removes a link, never its target)."""
        os.unlink(name, dir_fd=dir_fd)

    def rmdir(self, name: str, dir_fd: int) -> None:
        """os.rmdir relative to a directory fd."""
        os.rmdir(name, dir_fd=dir_fd)

    def listdir(self, fd: int) -> list[str]:
        """os.listdir of a directory fd."""
        return os.listdir(fd)


# --- Scan results ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something under the managed directory that is not one of our profile files.

    Attributes:
        kind: ``symlink`` (any symlink), ``hardlink`` (regular file with
            ``st_nlink > 1``), ``not-a-file`` (fifo, socket, device or directory at a
            profile name), ``stray`` (a name that is not ``<dns-name>.json`` in a
            namespace directory, or anything at the top level that is not a namespace
            directory), ``temp`` (leftover ``.tmp-*`` from an interrupted write).
        path: relative to the managed directory, e.g. ``default/x.json``.
        detail: what was found, for humans (``symlink -> /etc/passwd``, ``fifo``...).
        foreign: the kind reported in ``SeccompNodeStatus.status.foreignEntries``
            (``constants.FOREIGN_*``), from the file type and link count alone:
            ``Symlink``, ``HardLink``, ``Fifo``, ``Socket``, ``Device``, ``Directory``,
            ``UnknownFile``, ``TempFile`` or ``Other``.
    """

    kind: AnomalyKind
    path: str
    detail: str = ""
    foreign: str = c.FOREIGN_OTHER


@dataclass(slots=True)
class Scan:
    """What :meth:`ManagedDir.scan` found.

    Attributes:
        profiles: ``(namespace, name)`` of each safe regular ``<name>.json`` file.
        anomalies: everything else, sorted by path.
    """

    profiles: set[tuple[str, str]] = field(default_factory=set)
    anomalies: list[Anomaly] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FileId:
    """What lstat(2) or fstat(2) says about one directory entry, enough to tell a change.

    Any change to a file's bytes, owner, mode or link count moves its ``st_ctime``
    (inode(7), "Last status change timestamp"), and a replacement by rename brings
    another inode, so two equal ``FileId`` values mean the
    entry was not changed in between, except for writes within one tick of the file
    system's timestamp clock that keep the size; the agent re-reads the bytes on every
    in-place write event anyway (``IN_MODIFY``/``IN_CLOSE_WRITE``).

    Attributes:
        dev, ino: device and inode numbers.
        mode: ``st_mode`` (file type and permission bits).
        nlink: number of hard links.
        size: bytes.
        mtime_ns, ctime_ns: modification and status-change times (ns since the epoch).
    """

    dev: int
    ino: int
    mode: int
    nlink: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileId:
        """The ``FileId`` of a stat result."""
        return cls(st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    @property
    def single_regular(self) -> bool:
        """A regular file with exactly one link (what the agent writes)."""
        return stat.S_ISREG(self.mode) and self.nlink == 1


def _describe(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "regular file" if st.st_nlink <= 1 else f"regular file with {st.st_nlink} hard links"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device node"
    return "special file"


def foreign_kind(st: os.stat_result, *, temp: bool = False) -> str:
    """The ``constants.FOREIGN_*`` kind of an entry from its lstat(2) result.

    ``temp``: the entry has the agent's temporary-file prefix (a regular file with one
    link is then ``TempFile`` rather than ``UnknownFile``).
    """
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return c.FOREIGN_SYMLINK
    if stat.S_ISREG(mode):
        if st.st_nlink > 1:
            return c.FOREIGN_HARDLINK
        return c.FOREIGN_TEMP if temp else c.FOREIGN_FILE
    if stat.S_ISDIR(mode):
        return c.FOREIGN_DIRECTORY
    if stat.S_ISFIFO(mode):
        return c.FOREIGN_FIFO
    if stat.S_ISSOCK(mode):
        return c.FOREIGN_SOCKET
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return c.FOREIGN_DEVICE
    return c.FOREIGN_OTHER


def printable(text: str, cap: int = c.MESSAGE_CAP) -> str:
    """``text`` made safe to show in status and on a terminal, at most ``cap`` characters.

    File names and link targets are bytes chosen by whoever planted them: bytes that are
    not UTF-8 (decoded by ``os`` with ``surrogateescape``) become ``\\xNN``, control
    characters (C0, DEL, C1) become ``\\xNN``, and text over ``cap`` is cut with ``...``.
    """
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    out = "".join(f"\\x{ord(ch):02x}" if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 else ch for ch in raw)
    return out if len(out) <= cap else out[: max(0, cap - 3)] + "..."


def _valid(value: str, what: str) -> bool:
    try:
        paths.check_component(value, what)
    except paths.UnsafeNameError:
        return False
    return True


def profile_name(filename: str) -> str | None:
    """The profile name of a file name ``<name>.json`` in a namespace directory, else None.

    None for temporary files, other suffixes and names that are not DNS subdomains.
    """
    if filename.startswith(c.TEMP_PREFIX) or not filename.endswith(c.PROFILE_SUFFIX):
        return None
    name = filename.removesuffix(c.PROFILE_SUFFIX)
    return name if _valid(name, "name") else None


# --- The managed directory ----------------------------------------------------------------------
class ManagedDir:
    """``<kubelet-root>/seccomp/seccomp-operator`` on this node, opened without following symlinks.

    Usage::

        with ManagedDir("/var/lib/kubelet", candidates=["/var/lib/k0s/kubelet"]) as md:
            md.write("default", "nginx", rendered_bytes)

    :meth:`open` (or ``with``) must come first.  Every public operation re-walks
    ``seccomp`` and ``seccomp-operator`` from the kubelet root (cheap: a few
    ``openat`` calls), so a managed directory deleted or replaced behind the agent's
    back is noticed and recreated instead of writing into an unlinked directory.
    Not thread-safe; the agent uses one instance from one task at a time.

    Names: every ``namespace``/``name`` argument goes through
    :func:`paths.check_component` first; an unsafe one raises
    :class:`paths.UnsafeNameError` (a ``ValueError``) before anything is touched.
    """

    #: The directory below ``<kubelet-root>/seccomp`` this object manages (one path component).
    SUBDIR: ClassVar[str] = c.MANAGED_SUBDIR

    def __init__(self, kubelet_root: str, *, candidates: Sequence[str] = (), ops: Ops | None = None) -> None:
        """Bind to ``kubelet_root`` (a path string); nothing is opened yet.

        ``candidates`` are other plausible kubelet roots, named in
        :class:`KubeletRootMissing` when they exist.  ``ops`` replaces the system calls (tests).
        """
        self.kubelet_root = kubelet_root
        self.candidates = tuple(candidates)
        self._ops = ops if ops is not None else Ops()
        self._fd: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def managed_path(self) -> str:
        """Absolute path of the managed directory (for reporting)."""
        return str(paths.seccomp_root(self.kubelet_root) / self.SUBDIR)

    def path_of(self, namespace: str, name: str) -> str:
        """Absolute path of a profile's file, for status and messages (:func:`paths.profile_path`).

        Raises:
            paths.UnsafeNameError: if either part is not a safe single component.
        """
        return str(paths.profile_path(self.kubelet_root, namespace, name))

    def open(self, candidates: Sequence[str] | None = None) -> None:
        """Check the kubelet root and open (creating if missing) the managed directory.

        ``<root>/seccomp`` and ``<root>/seccomp/seccomp-operator`` are created with
        mode 0755 (whatever the umask) when missing; each is opened with
        ``O_DIRECTORY|O_NOFOLLOW`` relative to its parent's fd.  Calling it again
        reopens.  ``candidates``, when given, replaces the constructor's list of
        other plausible kubelet roots named in :class:`KubeletRootMissing`.

        Raises:
            KubeletRootMissing: the kubelet root is missing or not a directory;
                nothing is created.
            UnsafeEntry: ``seccomp`` or ``seccomp-operator`` is a symlink or not a directory.
            NodeWriteError: creating a missing directory failed (``ReadOnly``...).
        """
        if candidates is not None:
            self.candidates = tuple(candidates)
        fd = self._open_chain()
        old, self._fd = self._fd, fd
        if old is not None:
            self._close_quietly(old)

    def close(self) -> None:
        """Close the managed directory's fd (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            self._close_quietly(fd)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- operations -----------------------------------------------------------------------------
    def write(self, namespace: str, name: str, content: bytes) -> bool:
        """Make ``<namespace>/<name>.json`` hold exactly ``content``, atomically.

        Returns False (and writes nothing) if a safe regular file with mode 0644
        already holds exactly these bytes; True after a replacement.  Whatever was
        at the name (regular file, symlink, hard link, fifo) is replaced by rename;
        a symlink's or hard link's target is never written.

        Raises:
            paths.UnsafeNameError: unsafe namespace or name (nothing touched).
            UnsafeEntry: the namespace directory is a symlink or not a directory, or a
                directory sits at the file's name.
            NodeWriteError: with ``reason`` ``NoSpace``, ``ReadOnly``,
                ``PermissionDenied`` or ``IOError``; the old file is intact and the
                temporary file removed.
            KubeletRootMissing: the kubelet root vanished.
        """
        paths.localhost_profile(namespace, name)  # validates both before anything is touched
        self._refresh()
        filename = f"{name}{c.PROFILE_SUFFIX}"
        rel = f"{namespace}/{filename}"
        ns_fd, created = self._open_namespace(namespace, create=True)
        assert ns_fd is not None  # create=True never returns None
        try:
            try:
                if self._holds(ns_fd, filename, rel, content):
                    return False
                self._replace(ns_fd, filename, rel, content)
            except BaseException:
                if created:
                    self._rmdir_quietly(namespace)
                raise
        finally:
            self._close_quietly(ns_fd)
        return True

    def read(self, namespace: str, name: str) -> bytes | None:
        """The bytes of ``<namespace>/<name>.json``, or None if there is no such entry.

        Opened with ``O_RDONLY|O_NOFOLLOW|O_NONBLOCK`` relative to the namespace
        directory's fd, after an ``lstat`` so a device node is never opened.

        Raises:
            paths.UnsafeNameError: unsafe namespace or name.
            UnsafeEntry: a symlink, a non-regular file (fifo, directory...), a regular
                file with ``st_nlink > 1``, or a file larger than :data:`READ_CAP`
                sits at the name (or a symlink/non-directory at the namespace's name).
            NodeFSError: any other I/O failure.
        """
        found = self.read_entry(namespace, name)
        return None if found is None else found[0]

    def read_entry(self, namespace: str, name: str) -> tuple[bytes, FileId] | None:
        """Like :meth:`read`, also returning the :class:`FileId` of what was read.

        The ``FileId`` comes from fstat(2) of the very descriptor the bytes were read from
        (taken before reading), so it describes that file and no later replacement.

        Raises:
            The same as :meth:`read`.
        """
        paths.localhost_profile(namespace, name)  # validates both before anything is touched
        self._refresh()
        filename = f"{name}{c.PROFILE_SUFFIX}"
        ns_fd, _ = self._open_namespace(namespace, create=False)
        if ns_fd is None:
            return None
        try:
            return self._read_regular_entry(ns_fd, filename, f"{namespace}/{filename}")
        finally:
            self._close_quietly(ns_fd)

    def identity(self, namespace: str, name: str) -> FileId | None:
        """lstat(2) of ``<namespace>/<name>.json`` without following anything; None if absent.

        Nothing is opened but the directories (``O_NOFOLLOW``); the file is not read.

        Raises:
            paths.UnsafeNameError: unsafe namespace or name.
            UnsafeEntry: the namespace entry is a symlink or not a directory.
            NodeFSError: any other I/O failure.
        """
        paths.localhost_profile(namespace, name)  # validates both before anything is touched
        return self.entry_id(namespace, f"{name}{c.PROFILE_SUFFIX}")

    def entry_id(self, namespace: str, entry: str) -> FileId | None:
        """lstat(2) of any entry of the managed directory, without following anything.

        ``namespace`` empty: ``entry`` is at the top of the managed directory; else it is
        in that namespace directory.  ``entry`` is one name as the kernel reports it
        (inotify, readdir): it must not be empty, ``.``, ``..`` or contain ``/`` or NUL.
        Returns None if there is no such entry (or no such namespace directory).

        Raises:
            paths.UnsafeNameError: ``namespace`` is not a safe component, or ``entry``
                is not a single name.
            UnsafeEntry: the namespace entry is a symlink or not a directory.
            NodeFSError: any other I/O failure.
        """
        return self.entry_ids(namespace, [entry])[entry]

    def entry_ids(self, namespace: str, entries: Iterable[str]) -> dict[str, FileId | None]:
        """:meth:`entry_id` of several entries of one directory, which is opened once.

        Returns each entry's :class:`FileId`, or None for those absent.

        Raises:
            The same as :meth:`entry_id`.
        """
        names = list(entries)
        for entry in names:
            if not entry or entry in (".", "..") or "/" in entry or "\0" in entry:
                raise paths.UnsafeNameError(f"entry {entry!r} is not a single file name")
        fd = self._refresh()
        if not namespace:
            return {entry: self._id_at(fd, entry, entry) for entry in names}
        ns_fd, _ = self._open_namespace(namespace, create=False)
        if ns_fd is None:
            return dict.fromkeys(names)
        try:
            return {entry: self._id_at(ns_fd, entry, f"{namespace}/{entry}") for entry in names}
        finally:
            self._close_quietly(ns_fd)

    def _id_at(self, dir_fd: int, entry: str, rel: str) -> FileId | None:
        st = self._lstat(dir_fd, entry, rel)
        return None if st is None else FileId.of(st)

    def remove(self, namespace: str, name: str) -> bool:
        """Unlink ``<namespace>/<name>.json``; drop the namespace directory if now empty.

        Whatever is at the name (regular file, symlink, hard link, fifo) is unlinked:
        unlink(2) removes the directory entry, never a link's target.  The
        directories are fsynced.  Returns False if there was no entry.

        Raises:
            paths.UnsafeNameError: unsafe namespace or name.
            UnsafeEntry: the namespace entry is a symlink or not a directory, or a
                directory sits at the file's name (never removed recursively).
            NodeWriteError: the unlink failed (``ReadOnly``, ``PermissionDenied``...).
        """
        paths.localhost_profile(namespace, name)  # validates both before anything is touched
        self._refresh()
        filename = f"{name}{c.PROFILE_SUFFIX}"
        rel = f"{namespace}/{filename}"
        ns_fd, _ = self._open_namespace(namespace, create=False)
        if ns_fd is None:
            return False
        try:
            try:
                self._ops.unlink(filename, ns_fd)
                removed = True
            except FileNotFoundError:
                removed = False
            except IsADirectoryError:
                raise UnsafeEntry(
                    f"{self._abs(rel)} is a directory, not a profile file; not removing it",
                    self._abs(rel),
                ) from None
            except OSError as exc:
                raise self._error(NodeWriteError, exc, "removing", self._abs(rel)) from exc
            if removed:
                self._fsync_dir(ns_fd, namespace)
        finally:
            self._close_quietly(ns_fd)
        self._rmdir_quietly(namespace)
        return removed

    def scan(self) -> Scan:
        """List the managed directory: profile files and anomalies.

        Only namespace directories with valid names are entered; nothing is
        followed or opened except directories (``O_NOFOLLOW``).  Temp files are
        reported as ``temp`` anomalies and never as profiles.

        Raises:
            NodeFSError: listing failed.
        """
        fd = self._refresh()
        result = Scan()
        for ns in sorted(self._listdir(fd, "")):
            st = self._lstat(fd, ns, ns)
            if st is None:
                continue
            kind = foreign_kind(st)
            if stat.S_ISLNK(st.st_mode):
                result.anomalies.append(Anomaly("symlink", ns, self._link_detail(fd, ns), kind))
                continue
            if not stat.S_ISDIR(st.st_mode):
                result.anomalies.append(Anomaly("stray", ns, _describe(st), kind))
                continue
            if not _valid(ns, "namespace"):
                result.anomalies.append(Anomaly("stray", ns, "directory whose name is not a namespace", kind))
                continue
            ns_fd, _ = self._open_namespace(ns, create=False)
            if ns_fd is None:
                continue
            try:
                self._scan_namespace(ns_fd, ns, result)
            finally:
                self._close_quietly(ns_fd)
        result.anomalies.sort(key=lambda a: a.path)
        return result

    def cleanup_temp(self) -> list[str]:
        """Remove leftover temporary files (``constants.TEMP_PREFIX``) in namespace directories.

        Call while no :meth:`write` runs (at agent start, before the first sync).
        Returns the removed paths relative to the managed directory.  Directories
        with a temp-like name are left alone (reported by :meth:`scan`).

        Raises:
            NodeWriteError: an unlink failed.
        """
        removed: list[str] = []
        for anomaly in self.scan().anomalies:
            if anomaly.kind != "temp" or anomaly.detail == "directory":
                continue
            namespace, _, filename = anomaly.path.partition("/")
            ns_fd, _ = self._open_namespace(namespace, create=False)
            if ns_fd is None:
                continue
            try:
                try:
                    self._ops.unlink(filename, ns_fd)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._error(
                        NodeWriteError, exc, "removing temp file", self._abs(anomaly.path)
                    ) from exc
                self._fsync_dir(ns_fd, namespace)
                removed.append(anomaly.path)
            finally:
                self._close_quietly(ns_fd)
        return removed

    # -- internals: directories ---------------------------------------------------------------------
    def _abs(self, rel: str) -> str:
        return str(PurePosixPath(self.managed_path) / rel) if rel else self.managed_path

    @staticmethod
    def _error(cls: type[NodeFSError], exc: OSError, action: str, where: str, note: str = "") -> NodeFSError:
        message = f"{action} {where}: {exc.strerror or exc}{note}"
        if reason_for_errno(exc.errno) == REASON_UNSAFE_ENTRY:
            return UnsafeEntry(message, where)
        return cls(reason_for_errno(exc.errno), message, where)

    def _close_quietly(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            self._ops.close(fd)

    def _link_detail(self, dir_fd: int, name: str) -> str:
        try:
            return f"symlink -> {self._ops.readlink_at(name, dir_fd)}"
        except OSError:
            return "symlink"

    def _unsafe_dir(self, parent_fd: int, name: str, where: str) -> UnsafeEntry:
        try:
            st = self._ops.lstat_at(name, parent_fd)
        except OSError:
            found = "something that cannot be opened as a directory"
        else:
            found = self._link_detail(parent_fd, name) if stat.S_ISLNK(st.st_mode) else _describe(st)
        return UnsafeEntry(f"{where} is a {found}, expected a real directory; not following it", where)

    def _try_open_dir(self, parent_fd: int, name: str, where: str, *, writing: bool) -> int | None:
        """``openat(parent_fd, name, O_DIRECTORY|O_NOFOLLOW)``; None if there is no entry."""
        try:
            return self._ops.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise self._unsafe_dir(parent_fd, name, where) from exc
            raise self._error(NodeWriteError if writing else NodeFSError, exc, "opening", where) from exc

    def _open_dir(self, parent_fd: int, name: str, where: str, *, create: bool) -> tuple[int | None, bool]:
        """Open directory ``name`` below ``parent_fd`` without following it; create it (0755) if asked.

        Returns ``(fd, created)``; ``fd`` is None only when missing and ``create`` is false.
        """
        fd = self._try_open_dir(parent_fd, name, where, writing=create)
        if fd is not None or not create:
            return fd, False
        created = False
        try:
            self._ops.mkdir(name, c.DIR_MODE, parent_fd)
            created = True
        except FileExistsError:
            pass  # raced with another creator; the open below decides what it is
        except OSError as exc:
            raise self._error(NodeWriteError, exc, "creating", where) from exc
        fd = self._try_open_dir(parent_fd, name, where, writing=True)
        if fd is None:
            raise NodeWriteError(REASON_IO_ERROR, f"{where} vanished right after being created", where)
        if created:
            try:
                self._ops.fchmod(fd, c.DIR_MODE)  # mkdir's mode is filtered by the umask
                self._ops.fsync_dir(parent_fd)
            except OSError as exc:
                self._close_quietly(fd)
                raise self._error(NodeWriteError, exc, "creating", where) from exc
        return fd, created

    def _open_chain(self) -> int:
        root = self.kubelet_root
        try:
            root_fd = self._ops.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            present = [p for p in self.candidates if os.path.isdir(p)]
            raise KubeletRootMissing(root, present, self.candidates) from None
        except OSError as exc:
            raise self._error(NodeFSError, exc, "opening kubelet root", root) from exc
        try:
            seccomp_fd, _ = self._open_dir(
                root_fd, c.SECCOMP_SUBDIR, str(paths.seccomp_root(root)), create=True
            )
        finally:
            self._close_quietly(root_fd)
        assert seccomp_fd is not None
        try:
            managed_fd, _ = self._open_dir(seccomp_fd, self.SUBDIR, self.managed_path, create=True)
        finally:
            self._close_quietly(seccomp_fd)
        assert managed_fd is not None
        return managed_fd

    def _refresh(self) -> int:
        """Re-walk the chain at the start of a public operation; return the managed dir's fd.

        Notices a managed directory deleted or replaced behind the agent's back.
        """
        if self._fd is None:
            raise RuntimeError("ManagedDir is not open; call open() or use it as a context manager")
        self.open()
        assert self._fd is not None
        return self._fd

    def _open_namespace(self, namespace: str, *, create: bool) -> tuple[int | None, bool]:
        assert self._fd is not None
        paths.check_component(namespace, "namespace")
        return self._open_dir(self._fd, namespace, self._abs(namespace), create=create)

    def _fsync_dir(self, fd: int, rel: str) -> None:
        try:
            self._ops.fsync_dir(fd)
        except OSError as exc:
            raise self._error(NodeWriteError, exc, "syncing directory", self._abs(rel)) from exc

    def _rmdir_quietly(self, namespace: str) -> None:
        """Remove the namespace directory if it is empty; ignore every failure."""
        if self._fd is None:
            return
        try:
            self._ops.rmdir(namespace, self._fd)
        except OSError:
            return
        with contextlib.suppress(OSError):
            self._ops.fsync_dir(self._fd)

    def _listdir(self, fd: int, rel: str) -> list[str]:
        try:
            return self._ops.listdir(fd)
        except OSError as exc:
            raise self._error(NodeFSError, exc, "listing", self._abs(rel)) from exc

    def _lstat(self, dir_fd: int, name: str, rel: str) -> os.stat_result | None:
        try:
            return self._ops.lstat_at(name, dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(NodeFSError, exc, "inspecting", self._abs(rel)) from exc

    # -- internals: files ------------------------------------------------------------------------
    def _read_regular(self, ns_fd: int, filename: str, rel: str) -> bytes | None:
        found = self._read_regular_entry(ns_fd, filename, rel)
        return None if found is None else found[0]

    def _read_regular_entry(self, ns_fd: int, filename: str, rel: str) -> tuple[bytes, FileId] | None:
        where = self._abs(rel)
        st = self._lstat(ns_fd, filename, rel)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeEntry(f"{where} is a {self._link_detail(ns_fd, filename)}; not following it", where)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise UnsafeEntry(f"{where} is a {_describe(st)}, expected a regular file with one link", where)
        try:
            fd = self._ops.open(filename, _READ_FLAGS, dir_fd=ns_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(NodeFSError, exc, "opening", where) from exc
        try:
            fst = self._ops.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                raise UnsafeEntry(f"{where} was replaced while being opened", where)
            if not stat.S_ISREG(fst.st_mode) or fst.st_nlink > 1:
                raise UnsafeEntry(
                    f"{where} is a {_describe(fst)}, expected a regular file with one link", where
                )
            if fst.st_size > READ_CAP:
                raise UnsafeEntry(f"{where} is {fst.st_size} bytes, more than the {READ_CAP} read cap", where)
            chunks: list[bytes] = []
            total = 0
            while True:
                chunk = self._ops.read(fd, _CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > READ_CAP:
                    raise UnsafeEntry(f"{where} grew past the {READ_CAP} byte read cap", where)
                chunks.append(chunk)
            return b"".join(chunks), FileId.of(fst)
        except OSError as exc:
            raise self._error(NodeFSError, exc, "reading", where) from exc
        finally:
            self._close_quietly(fd)

    def _holds(self, ns_fd: int, filename: str, rel: str, content: bytes) -> bool:
        """True if a safe regular 0644 file at ``filename`` already holds exactly ``content``."""
        st = self._lstat(ns_fd, filename, rel)
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            where = self._abs(rel)
            raise UnsafeEntry(f"{where} is a directory, expected a profile file; not replacing it", where)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_nlink > 1
            or st.st_size != len(content)
            or stat.S_IMODE(st.st_mode) != c.FILE_MODE
        ):
            return False
        try:
            return self._read_regular(ns_fd, filename, rel) == content
        except NodeFSError:
            return False  # whatever is wrong with it, the rename below replaces it

    def _replace(self, ns_fd: int, filename: str, rel: str, content: bytes) -> None:
        temp = ""
        fd: int | None = None
        for _ in range(8):
            temp = c.TEMP_PREFIX + secrets.token_hex(8)
            try:
                fd = self._ops.open(temp, _TEMP_FLAGS, c.FILE_MODE, dir_fd=ns_fd)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._error(NodeWriteError, exc, "creating temporary file for", self._abs(rel)) from exc
        if fd is None:
            raise NodeWriteError(
                REASON_IO_ERROR, f"no free temporary name for {self._abs(rel)}", self._abs(rel)
            )
        step = "writing"
        try:
            try:
                step = "setting mode of"
                self._ops.fchmod(fd, c.FILE_MODE)
                step = "writing"
                view = memoryview(content)
                while view:
                    written = self._ops.write(fd, view)
                    if written <= 0:
                        raise OSError(errno.EIO, "write returned 0")
                    view = view[written:]
                step = "syncing"
                self._ops.fsync(fd)
            finally:
                self._close_quietly(fd)
            step = "renaming temporary file to"
            self._ops.rename(temp, filename, ns_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                self._ops.unlink(temp, ns_fd)
            if isinstance(exc, OSError):
                raise self._error(NodeWriteError, exc, step, self._abs(rel)) from exc
            raise
        try:
            self._ops.fsync_dir(ns_fd)
        except OSError as exc:
            note = " (the new file is in place but may not survive a crash)"
            raise self._error(
                NodeWriteError, exc, "syncing directory after replacing", self._abs(rel), note
            ) from exc

    def _scan_namespace(self, ns_fd: int, ns: str, result: Scan) -> None:
        for entry in sorted(self._listdir(ns_fd, ns)):
            rel = f"{ns}/{entry}"
            st = self._lstat(ns_fd, entry, rel)
            if st is None:
                continue
            temp = entry.startswith(c.TEMP_PREFIX)
            kind = foreign_kind(st, temp=temp)
            if temp:
                result.anomalies.append(Anomaly("temp", rel, _describe(st), kind))
            elif stat.S_ISLNK(st.st_mode):
                result.anomalies.append(Anomaly("symlink", rel, self._link_detail(ns_fd, entry), kind))
            elif profile_name(entry) is None:
                result.anomalies.append(Anomaly("stray", rel, _describe(st), kind))
            elif not stat.S_ISREG(st.st_mode):
                result.anomalies.append(Anomaly("not-a-file", rel, _describe(st), kind))
            elif st.st_nlink > 1:
                result.anomalies.append(Anomaly("hardlink", rel, _describe(st), kind))
            else:
                result.profiles.add((ns, entry.removesuffix(c.PROFILE_SUFFIX)))


# --- Watching the managed directory (inotify) ---------------------------------------------------
HintKind = Literal["entry", "namespace", "managed", "overflow"]

#: Events asked for on every watched directory (inotify(7)): entries created, deleted,
#: renamed in or out, written in place, truncated, closed after writing, or whose
#: metadata (mode, link count, times) changed; the directory itself deleted or moved.
#: ``IN_ONLYDIR``: refuse to watch anything but a directory.  ``IN_EXCL_UNLINK``: no
#: events for files after they were unlinked (a writer still holding a replaced file
#: open would otherwise keep sending them).  ``IN_IGNORED``, ``IN_UNMOUNT`` and
#: ``IN_Q_OVERFLOW`` are always reported.
#: The values are the kernel's (<sys/inotify.h>, the same as ``asyncinotify.Mask``), so
#: that this module does not import asyncinotify until a watch is made.
IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_CLOSE_WRITE: Final = 0x00000008
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_EXCL_UNLINK: Final = 0x04000000
IN_ISDIR: Final = 0x40000000
WATCH_MASK: Final = (
    IN_CREATE
    | IN_DELETE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_MODIFY
    | IN_CLOSE_WRITE
    | IN_ATTRIB
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_EXCL_UNLINK
)
#: The watched directory itself went away (deleted, moved, its file system unmounted) or
#: its watch was removed: the watch no longer covers the directory at that name.
_SELF_GONE: Final = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT
#: Bytes written in place (write(2), truncate(2)): the agent itself never does this to a
#: profile file (it writes a temporary file and renames it), so it is always foreign.
_DATA_CHANGED: Final = IN_MODIFY | IN_CLOSE_WRITE


@dataclass(frozen=True, slots=True)
class WatchHint:
    """What one inotify event says changed: a hint to re-check, never a path to act on.

    Attributes:
        kind: ``entry``: an entry of a namespace directory (or, with ``namespace`` empty,
            of the managed directory itself) was created, deleted, renamed, written or
            changed; ``namespace``: the watched namespace directory ``namespace`` was
            itself deleted or moved; ``managed``: the managed directory itself was
            deleted, moved or unmounted (re-arm, then check everything);
            ``overflow``: the kernel's event queue overflowed and events were lost
            (``IN_Q_OVERFLOW``, inotify(7)): check everything.
        namespace: the namespace directory (``""``: the top of the managed directory).
        name: the entry's name as the kernel gave it (one path component).
        is_dir: the entry is a directory (``IN_ISDIR``).
        data_changed: bytes were written in place (``IN_MODIFY``/``IN_CLOSE_WRITE``).
    """

    kind: HintKind
    namespace: str = ""
    name: str = ""
    is_dir: bool = False
    data_changed: bool = False


class WatchUnavailable(Exception):
    """The kernel refused to set up a watch; the agent falls back to its periodic resync.

    Attributes:
        errno: the ``errno`` of the refused call (``EMFILE``: instance limit,
            ``ENOSPC``: watch limit, ``ENOENT``: no ``/proc``, ``EPERM``: a seccomp
            filter or LSM, ``ENOSYS``: no inotify in this kernel).
        message: human-readable, names the limit or the cause and the directory.
    """

    def __init__(self, err: int | None, message: str) -> None:
        super().__init__(message)
        self.errno = err
        self.message = message


def _watch_failure(exc: OSError, action: str) -> WatchUnavailable:
    """A :class:`WatchUnavailable` for an ``OSError`` of inotify_init1(2) or inotify_add_watch(2).

    The causes named are those the man pages give for these errors (inotify_init(2):
    ``EMFILE``, the per-user limit on inotify instances; inotify_add_watch(2): ``ENOSPC``,
    the per-user limit on watches); the sysctls are described in inotify(7), section
    "/proc interfaces".
    """
    err = exc.errno
    if err == errno.EMFILE:
        cause = "the inotify instance limit is reached (sysctl fs.inotify.max_user_instances)"
    elif err == errno.ENOSPC:
        cause = "the inotify watch limit is reached (sysctl fs.inotify.max_user_watches)"
    elif err == errno.ENOENT:
        cause = f"{PROC_SELF_FD} is not available (is /proc mounted in the agent container?)"
    elif err in (errno.EPERM, errno.EACCES):
        cause = "inotify was refused (a seccomp filter or security module forbids it?)"
    elif err == errno.ENOSYS:
        cause = "this kernel has no inotify"
    else:
        cause = exc.strerror or str(exc)
    return WatchUnavailable(err, f"{action}: {cause}")


def new_inotify() -> Inotify:
    """A non-blocking, close-on-exec inotify instance reading up to ``WATCH_READ_EVENTS`` events a call.

    The flags are given explicitly: asyncinotify 4.4's default ``InitFlags.NONBLOCK`` is
    defined as ``O_CLOEXEC``, which would leave the descriptor blocking.  asyncinotify is
    imported here, not with this module: its import runs ``ldconfig -p`` (ctypes'
    ``find_library``), which no command but the watching agent should pay for.

    Raises:
        OSError: inotify_init1(2) failed (``EMFILE``, ``ENFILE``, ``ENOMEM``, ``ENOSYS``,
            ``EPERM``), or libc has no inotify functions.
    """
    from asyncinotify import InitFlags, Inotify

    return Inotify(flags=InitFlags(os.O_CLOEXEC | os.O_NONBLOCK), cache_size=c.WATCH_READ_EVENTS)


class DirWatch:
    """inotify watches on the managed directory and each of its namespace directories.

    Usage (the agent does this)::

        watch = DirWatch()
        watch.arm(managed_dir)              # every directory watched now
        while True:
            for event in await watch.next_events(limit):
                hint = watch.translate(event)
                ...                         # re-check what the hint names

    One inotify instance for the object's life; :meth:`arm` replaces every watch
    (after the managed directory was deleted or moved, or after a queue overflow),
    :meth:`add_namespace` (re)watches one namespace directory (after it was created).
    Directories are opened like everything else here, relative to their parent with
    ``O_DIRECTORY|O_NOFOLLOW``, and watched through ``/proc/self/fd/N`` (see the
    module docstring), so a symlink is never watched through and nothing outside the
    managed directory is ever watched.  Not recursive: only the two levels the agent
    writes.  Not thread-safe; one task reads events, the agent's pass calls the rest.

    The kernel reports a watched directory's own removal (``IN_DELETE_SELF``) only once
    nothing references it any more: while a descriptor of it is open (a
    :class:`ManagedDir` that was not closed), the removal shows only as the events of
    its entries.  The agent closes its :class:`ManagedDir` after every pass.

    Watch descriptors are numbered cyclically by the kernel (``idr_alloc_cyclic`` in
    fs/notify/inotify/inotify_user.c), so a late event of a removed watch is not taken
    for an event of a new one; such events are dropped by :meth:`translate`.

    Args:
        inotify_factory: makes the inotify instance (tests inject failures); default
            :func:`new_inotify`.
    """

    def __init__(self, *, inotify_factory: Callable[[], Inotify] = new_inotify) -> None:
        self._factory = inotify_factory
        self._inotify: Inotify | None = None
        #: ``""`` (the managed directory) or a namespace -> its current watch.
        self._watches: dict[str, Watch] = {}
        #: Watch descriptor -> ``""`` or namespace, for current watches only.
        self._rel: dict[int, str] = {}
        self._ready = asyncio.Event()

    @property
    def armed(self) -> bool:
        """True while the managed directory itself is watched."""
        return "" in self._watches

    @property
    def namespaces(self) -> frozenset[str]:
        """Namespace directories currently watched."""
        return frozenset(k for k in self._watches if k)

    def arm(self, managed: ManagedDir) -> None:
        """(Re)create every watch: the managed directory and each namespace directory in it.

        Creates ``seccomp`` and the managed directory when missing, as
        :meth:`ManagedDir.open` does.  Entries at namespace names that are not real
        directories (symlinks...) are not watched.

        Raises:
            WatchUnavailable: inotify_init1(2) or inotify_add_watch(2) failed; the
                watches added before the failure stay (partial cover).
            KubeletRootMissing, UnsafeEntry, NodeFSError: as :meth:`ManagedDir.open`,
                or listing the managed directory failed.
        """
        inotify = self._instance()
        for watch in list(self._watches.values()):
            self._remove(inotify, watch)
        self._watches.clear()
        self._rel.clear()
        fd = managed._open_chain()
        try:
            self._add(inotify, "", fd, managed.managed_path)
            self._ready.set()
            for ns in sorted(managed._listdir(fd, "")):
                if _valid(ns, "namespace"):
                    self._add_namespace_at(inotify, managed, fd, ns)
        finally:
            managed._close_quietly(fd)

    def add_namespace(self, managed: ManagedDir, namespace: str) -> bool:
        """Watch namespace directory ``namespace`` (again); True if it is watched now.

        An older watch of that name is removed first (the directory may have been
        replaced).  False, with no watch, when there is no such entry or it is not a
        real directory, or when the managed directory is not watched (:meth:`arm` first).

        Raises:
            paths.UnsafeNameError: ``namespace`` is not a safe component.
            WatchUnavailable: inotify_add_watch(2) failed.
            NodeFSError: opening the chain of directories failed.
        """
        paths.check_component(namespace, "namespace")
        if not self.armed or self._inotify is None:
            return False
        inotify = self._inotify
        fd = managed._open_chain()
        try:
            return self._add_namespace_at(inotify, managed, fd, namespace)
        finally:
            managed._close_quietly(fd)

    def translate(self, event: Event) -> WatchHint | None:
        """The hint one event gives, or None for events that say nothing new.

        None: events of watches removed since (re-armed), nameless events other than
        the directory's own removal, and events about the agent's own temporary files
        (names starting with ``constants.TEMP_PREFIX`` in namespace directories; a
        foreign file with such a name is removed at the next full resync).  An
        ``IN_IGNORED`` event forgets its watch.
        """
        mask = int(event.mask)
        if mask & IN_Q_OVERFLOW:
            return WatchHint("overflow")
        watch = event.watch
        rel = None if watch is None else self._rel.get(watch.wd)
        if watch is None or rel is None or self._watches.get(rel) is not watch:
            return None
        name = "" if event.name is None else str(event.name)
        if not name and mask & _SELF_GONE:
            if mask & IN_IGNORED:
                self._rel.pop(watch.wd, None)
                self._watches.pop(rel, None)
            return WatchHint("managed") if rel == "" else WatchHint("namespace", namespace=rel)
        if not name or (rel and name.startswith(c.TEMP_PREFIX)):
            return None
        return WatchHint(
            "entry",
            namespace=rel,
            name=name,
            is_dir=bool(mask & IN_ISDIR),
            data_changed=bool(mask & _DATA_CHANGED),
        )

    async def next_events(self, limit: int) -> list[Event]:
        """Wait (without polling) for the next event, then return it with every event
        already queued, at most ``limit`` in all.

        Waits until :meth:`arm` succeeded once.  Draining what is queued before the
        caller acts lets a burst of changes be handled in one pass, not one pass per
        read(2) of at most ``WATCH_READ_EVENTS`` events.

        Raises:
            OSError: reading the inotify descriptor failed.
            ValueError: the watch was closed meanwhile.
        """
        await self._ready.wait()
        inotify = self._inotify
        if inotify is None:
            raise ValueError("DirWatch is closed")
        events = [await inotify.get()]
        inotify.sync_timeout = 0  # sync_get: poll without waiting, None when nothing is queued
        while len(events) < limit and (event := inotify.sync_get()) is not None:
            events.append(event)
        return events

    def close(self) -> None:
        """Close the inotify instance (every watch goes with it); idempotent.

        Cancel any task awaiting :meth:`next_events` first and let it finish, so that
        the event loop stops reading the descriptor before it is closed.
        """
        self._watches.clear()
        self._rel.clear()
        self._ready.clear()
        inotify, self._inotify = self._inotify, None
        if inotify is not None:
            inotify.close()

    # -- internals ---------------------------------------------------------------------------
    def _instance(self) -> Inotify:
        if self._inotify is None:
            try:
                self._inotify = self._factory()
            except OSError as exc:
                raise _watch_failure(exc, "cannot create an inotify instance") from exc
        return self._inotify

    def _add(self, inotify: Inotify, rel: str, fd: int, where: str) -> None:
        from asyncinotify import Mask

        try:
            watch = inotify.add_watch(f"{PROC_SELF_FD}/{fd}", Mask(WATCH_MASK))
        except OSError as exc:
            raise _watch_failure(exc, f"cannot watch {where}") from exc
        self._watches[rel] = watch
        self._rel[watch.wd] = rel

    def _remove(self, inotify: Inotify, watch: Watch) -> None:
        self._rel.pop(watch.wd, None)
        with contextlib.suppress(OSError):  # EINVAL: the kernel already dropped it (IN_IGNORED)
            inotify.rm_watch(watch)

    def _add_namespace_at(
        self, inotify: Inotify, managed: ManagedDir, parent_fd: int, namespace: str
    ) -> bool:
        old = self._watches.pop(namespace, None)
        if old is not None:
            self._remove(inotify, old)
        try:
            ns_fd, _ = managed._open_dir(parent_fd, namespace, managed._abs(namespace), create=False)
        except UnsafeEntry:
            return False  # a symlink or a non-directory at a namespace's name: never watched
        if ns_fd is None:
            return False
        try:
            self._add(inotify, namespace, ns_fd, managed._abs(namespace))
        finally:
            managed._close_quietly(ns_fd)
        return True


__all__ = [
    "PROC_SELF_FD",
    "READ_CAP",
    "REASON_IO_ERROR",
    "REASON_KUBELET_ROOT_MISSING",
    "REASON_NO_SPACE",
    "REASON_PERMISSION_DENIED",
    "REASON_READ_ONLY",
    "REASON_UNSAFE_ENTRY",
    "WATCH_MASK",
    "Anomaly",
    "AnomalyKind",
    "DirWatch",
    "FileId",
    "HintKind",
    "KubeletRootMissing",
    "ManagedDir",
    "NodeFSError",
    "NodeWriteError",
    "Ops",
    "Scan",
    "UnsafeEntry",
    "WatchHint",
    "WatchUnavailable",
    "foreign_kind",
    "new_inotify",
    "printable",
    "profile_name",
    "reason_for_errno",
]
