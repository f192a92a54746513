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
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self

from . import constants as c
from . import paths

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
    """

    kind: AnomalyKind
    path: str
    detail: str = ""


@dataclass(slots=True)
class Scan:
    """What :meth:`ManagedDir.scan` found.

    Attributes:
        profiles: ``(namespace, name)`` of each safe regular ``<name>.json`` file.
        anomalies: everything else, sorted by path.
    """

    profiles: set[tuple[str, str]] = field(default_factory=set)
    anomalies: list[Anomaly] = field(default_factory=list)


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


def _valid(value: str, what: str) -> bool:
    try:
        paths.check_component(value, what)
    except paths.UnsafeNameError:
        return False
    return True


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
        return str(paths.managed_dir(self.kubelet_root))

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
        paths.localhost_profile(namespace, name)  # validates both before anything is touched
        self._refresh()
        filename = f"{name}{c.PROFILE_SUFFIX}"
        ns_fd, _ = self._open_namespace(namespace, create=False)
        if ns_fd is None:
            return None
        try:
            return self._read_regular(ns_fd, filename, f"{namespace}/{filename}")
        finally:
            self._close_quietly(ns_fd)

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
            if stat.S_ISLNK(st.st_mode):
                result.anomalies.append(Anomaly("symlink", ns, self._link_detail(fd, ns)))
                continue
            if not stat.S_ISDIR(st.st_mode):
                result.anomalies.append(Anomaly("stray", ns, _describe(st)))
                continue
            if not _valid(ns, "namespace"):
                result.anomalies.append(Anomaly("stray", ns, "directory whose name is not a namespace"))
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
        return str(paths.managed_dir(self.kubelet_root) / rel) if rel else self.managed_path

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
            managed_fd, _ = self._open_dir(seccomp_fd, c.MANAGED_SUBDIR, self.managed_path, create=True)
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
            return b"".join(chunks)
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
            if entry.startswith(c.TEMP_PREFIX):
                result.anomalies.append(Anomaly("temp", rel, _describe(st)))
            elif stat.S_ISLNK(st.st_mode):
                result.anomalies.append(Anomaly("symlink", rel, self._link_detail(ns_fd, entry)))
            elif not entry.endswith(c.PROFILE_SUFFIX) or not _valid(
                entry.removesuffix(c.PROFILE_SUFFIX), "name"
            ):
                result.anomalies.append(Anomaly("stray", rel, _describe(st)))
            elif not stat.S_ISREG(st.st_mode):
                result.anomalies.append(Anomaly("not-a-file", rel, _describe(st)))
            elif st.st_nlink > 1:
                result.anomalies.append(Anomaly("hardlink", rel, _describe(st)))
            else:
                result.profiles.add((ns, entry.removesuffix(c.PROFILE_SUFFIX)))


__all__ = [
    "READ_CAP",
    "REASON_IO_ERROR",
    "REASON_KUBELET_ROOT_MISSING",
    "REASON_NO_SPACE",
    "REASON_PERMISSION_DENIED",
    "REASON_READ_ONLY",
    "REASON_UNSAFE_ENTRY",
    "Anomaly",
    "AnomalyKind",
    "KubeletRootMissing",
    "ManagedDir",
    "NodeFSError",
    "NodeWriteError",
    "Ops",
    "Scan",
    "UnsafeEntry",
    "reason_for_errno",
]
