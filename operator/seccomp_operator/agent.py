"""The node agent's logic: keep the managed directory equal to the live profiles.

Level-based: :class:`Agent` holds the profiles it has seen (fed by watch events
through :meth:`Agent.observe`), and :meth:`Agent.reconcile` makes the directory
match: renders every wanted profile, writes it atomically when the bytes differ,
reads it back, removes files of disabled or deleted profiles, and returns the
per-profile report.  :meth:`Agent.run` loops on wake-ups and a periodic full resync
that re-reads the live list from the API and re-checks every file on disk (so files
deleted or changed by hand are restored, and files of profiles deleted while the
agent was down are removed).

Between resyncs, an inotify watch of the managed directory (:class:`nodefs.DirWatch`)
wakes the loop as soon as anything there changes.  Each event is a hint naming one
entry: the agent compares that entry's lstat(2) identity with the one it recorded
after its own last write, read-back or removal (:class:`nodefs.FileId`), and only
when they differ (or bytes were written in place) re-checks that one profile, which
rewrites it atomically if its bytes differ.  The agent's own renames and removals
leave the recorded identity on disk, so their events are recognised and ignored (no
loop); its temporary files are ignored by name.  When the watch cannot be set up the
agent says so once in its log and in ``status.fileWatch``, and repairs at the resync.

Entries in the managed directory that are not profile files the agent manages
(symlinks, hard links, fifos, sockets, devices, stray directories and files) are
listed in ``status.foreignEntries`` (at most ``FOREIGN_ENTRIES_CAP``, all counted
in ``foreignEntryCount``), as found after the agent repaired what it manages; they
are never followed, read or written through.

Rules the agent never breaks:
- it writes only under ``<kubelet-root>/seccomp/seccomp-operator`` (see :mod:`nodefs`);
- it never writes SeccompProfile objects; it reports in its own node's
  SeccompNodeStatus only;
- it removes a file only for a profile it knows to be disabled or deleting, one whose
  deletion it saw, or one absent from a *successful* full list: a failed list is
  never read as "everything was deleted".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import posixpath
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from prometheus_client import Counter, Gauge

from . import __version__, nodefs, paths
from . import constants as c
from .findings import ProfileError, summary
from .kube import ApiError, now_rfc3339
from .metrics import AgentMetrics
from .profiles import ProfileSnapshot, Renderer, dependents, snapshot_from_body

logger = logging.getLogger("seccomp_operator.agent")


class AgentApi(Protocol):
    """The API calls the agent makes (implemented by :class:`kube.KubeApi`)."""

    async def list_profiles(self) -> list[dict[str, Any]]: ...
    async def get_node_status(self, name: str) -> dict[str, Any] | None: ...
    async def create_node_status(self, body: Mapping[str, Any]) -> None: ...
    async def patch_node_status(self, name: str, patch: Mapping[str, Any]) -> None: ...
    async def get_node_uid(self, name: str) -> str | None: ...
    async def get_node_labels(self, name: str) -> dict[str, str] | None: ...
    async def remove_node_taint(self, name: str, key: str, effect: str) -> bool: ...


@dataclass
class AgentConfig:
    """Settings of one agent.

    Attributes:
        node_name: the Node this agent runs on (downward API ``spec.nodeName``).
        kubelet_root: the kubelet's ``--root-dir`` on this node (default ``/var/lib/kubelet``).
        resync_seconds: period of the full resync (API list + check of every file).
        kubelet_root_candidates: other roots to name in the error when ``kubelet_root``
            does not exist (k0s, MicroK8s...).
        remove_taint: once every enabled profile is installed after start, remove the
            ``seccomp-operator.dev/not-ready:NoSchedule`` taint from this node (a no-op
            when the node does not carry it).
        watch: watch the managed directory with inotify while :meth:`Agent.run` runs,
            so files changed by hand are repaired within milliseconds rather than at
            the next full resync (which stays as the safety net).
    """

    node_name: str
    kubelet_root: str = c.DEFAULT_KUBELET_ROOT
    resync_seconds: float = 60.0
    kubelet_root_candidates: tuple[str, ...] = (
        "/var/lib/kubelet",
        "/var/lib/k0s/kubelet",
        "/var/snap/microk8s/common/var/lib/kubelet",
        "/var/lib/rancher/k3s/agent/kubelet",
    )
    remove_taint: bool = True
    watch: bool = True


@dataclass
class Entry:
    """One profile's line in the node report (``status.profiles[<ns>/<name>]``)."""

    state: str
    content_hash: str = ""
    path: str = ""
    message: str = ""
    since: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form written into SeccompNodeStatus."""
        return {
            "state": self.state,
            "contentHash": self.content_hash or None,
            "path": self.path,
            "message": self.message,
            "lastTransitionTime": self.since,
        }


@dataclass(frozen=True, slots=True)
class ForeignEntry:
    """One entry of ``status.foreignEntries``: something in the managed directory the agent
    does not manage.

    Attributes:
        path: relative to the managed directory (``demo/x.json``), made printable
            (:func:`nodefs.printable`).
        kind: ``constants.FOREIGN_*`` (``Symlink``, ``HardLink``, ``Fifo``...).
        detail: what lstat(2)/readlink(2) showed, e.g. ``symlink -> /etc/passwd``.
    """

    path: str
    kind: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form under ``status.foreignEntries[<path>]``."""
        return {"kind": self.kind, "detail": self.detail}


@dataclass
class Report:
    """The whole node report: agent state plus one :class:`Entry` per profile.

    ``foreign`` holds at most ``FOREIGN_ENTRIES_CAP`` entries, sorted by path;
    ``foreign_count`` counts all.  ``file_watch`` is a ``constants.FILE_WATCH_*`` state.
    """

    state: str = "Ready"
    message: str = ""
    entries: dict[str, Entry] = field(default_factory=dict)
    foreign: list[ForeignEntry] = field(default_factory=list)
    foreign_count: int = 0
    file_watch: str = c.FILE_WATCH_DISABLED
    file_watch_message: str = ""

    def status(self, cfg: AgentConfig, kubelet_root: str | None = None) -> dict[str, Any]:
        """The ``status`` object of this node's SeccompNodeStatus.

        ``kubelet_root`` is the resolved root (node label override), default ``cfg.kubelet_root``.
        """
        root = kubelet_root or cfg.kubelet_root
        return {
            "nodeName": cfg.node_name,
            "kubeletRoot": root,
            "seccompRoot": str(paths.seccomp_root(root)),
            "agentVersion": __version__,
            "state": self.state,
            "message": self.message,
            "installed": sum(1 for e in self.entries.values() if e.state == c.NODE_INSTALLED),
            "failed": sum(1 for e in self.entries.values() if e.state == c.NODE_ERROR),
            "profiles": {k: e.as_dict() for k, e in sorted(self.entries.items())},
            "fileWatch": {"state": self.file_watch, "message": self.file_watch_message},
            "foreignEntryCount": self.foreign_count,
            "foreignEntries": {f.path: f.as_dict() for f in self.foreign},
        }


#: Top-level ``status`` fields that are maps patched entry by entry (``null`` removes one).
_MAP_FIELDS: Final = ("profiles", "foreignEntries")
#: ``trigger`` label of the repair counter: a watch event, or a full resync pass.
TRIGGER_WATCH: Final = "watch"
TRIGGER_RESYNC: Final = "resync"


class FileMetrics:
    """The agent's file-watch series, on the agent's own registry (label ``node`` on each).

    ``seccomp_agent_file_writes_total{node}``          counter, profile files replaced
    ``seccomp_agent_file_repairs_total{node,trigger}`` counter, files found changed by hand
                                                        and restored (``watch``/``resync``)
    ``seccomp_agent_watch_events_total{node}``         counter, inotify events read
    ``seccomp_agent_watch_ignored_total{node}``        counter, checks of a watched file that
                                                        found it as the agent left it
    ``seccomp_agent_file_watch_active{node}``          gauge, 1 while the watch covers the directory
    """

    def __init__(self, base: AgentMetrics) -> None:
        node, registry = base.node, base.registry
        self.writes = Counter(
            "seccomp_agent_file_writes", "Profile files replaced on this node", ["node"], registry=registry
        ).labels(node=node)
        repairs = Counter(
            "seccomp_agent_file_repairs",
            "Profile files found changed on disk and restored, by what noticed it",
            ["node", "trigger"],
            registry=registry,
        )
        self.repairs = {t: repairs.labels(node=node, trigger=t) for t in (TRIGGER_WATCH, TRIGGER_RESYNC)}
        self.events = Counter(
            "seccomp_agent_watch_events", "inotify events read", ["node"], registry=registry
        ).labels(node=node)
        self.ignored = Counter(
            "seccomp_agent_watch_ignored",
            "Watch hints about files found exactly as the agent left them",
            ["node"],
            registry=registry,
        ).labels(node=node)
        self.active = Gauge(
            "seccomp_agent_file_watch_active",
            "1 while an inotify watch covers the managed directory",
            ["node"],
            registry=registry,
        ).labels(node=node)


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the content hash reported for files on disk)."""
    return hashlib.sha256(data).hexdigest()


class Agent:
    """One node's agent: profiles in memory, files on disk, a report for the API.

    Args:
        cfg: see :class:`AgentConfig`.
        api: the API seam (None for offline use: no list, no report).
        directory: the managed directory; defaults to ``nodefs.ManagedDir(cfg.kubelet_root)``.
        watch_factory: makes the directory watch :meth:`start_watch` uses (tests inject
            failures); default :class:`nodefs.DirWatch`.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        api: AgentApi | None,
        directory: nodefs.ManagedDir | None = None,
        *,
        watch_factory: Callable[[], nodefs.DirWatch] | None = None,
    ) -> None:
        self.cfg = cfg
        self.api = api
        self.dir = directory or nodefs.ManagedDir(cfg.kubelet_root)
        #: The kubelet root in use: ``cfg.kubelet_root`` or the Node label's override.
        self.kubelet_root = cfg.kubelet_root
        #: False until the Node's labels were read (with an API) or a directory was injected.
        self._root_resolved = api is None or directory is not None
        self.metrics = AgentMetrics(cfg.node_name)
        #: True once the not-ready taint is known to be absent from this node.
        self.taint_done = not cfg.remove_taint
        #: Profiles whose last write or removal failed on disk (the taint stays while any).
        self._fs_failed: set[str] = set()
        self.profiles: dict[str, ProfileSnapshot] = {}
        self.renderer = Renderer()
        #: True once a full list from the API succeeded: only then may absence mean deletion.
        self.authoritative = False
        self.report = Report()
        self._dirty: set[str] = set()
        self._gone: set[str] = set()
        self._full_due = True
        self._wake = asyncio.Event()
        self._written_status: dict[str, Any] | None = None
        self._dir_open = False
        #: Set after the first successful reconcile with an authoritative list.
        self.synced = asyncio.Event()
        self.on_reported: Callable[[], Awaitable[None]] | None = None
        self.file_metrics = FileMetrics(self.metrics)
        # --- the directory watch (see the module docstring) ---
        self._watch_factory: Callable[[], nodefs.DirWatch] = watch_factory or nodefs.DirWatch
        self._watch: nodefs.DirWatch | None = None
        self._watch_task: asyncio.Task[None] | None = None
        #: (Re)arm every watch at the next pass.
        self._watch_due = False
        #: Hints read since the last pass (at most WATCH_HINTS_CAP; beyond: check everything).
        self._hints: list[nodefs.WatchHint] = []
        self._check_all = False
        #: Refresh ``report.foreign`` at the next pass (a foreign entry may have changed).
        self._scan_due = False
        #: Per profile key: the identity of its file as the agent last left or verified it
        #: (None: no entry).  Keys of profiles not yet handled are absent.
        self._seen: dict[str, nodefs.FileId | None] = {}
        #: (st_dev, st_ino) of each file in ``_seen`` -> its key (finds the profile a
        #: hard link planted in the directory shares its inode with).
        self._seen_inodes: dict[tuple[int, int], str] = {}
        #: Keys the watch made dirty in the current pass (the repair counter's trigger).
        self._watch_keys: set[str] = set()
        #: Files written or removed in the current pass.
        self._disk_ops = 0

    # --- inputs ---------------------------------------------------------------------
    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Feed one watch event (``ADDED``/``MODIFIED``/``DELETED``, or None while listing)."""
        try:
            snap = _held(snapshot_from_body(body), body)
        except ValueError:
            return
        if event_type == "MODIFIED" and self.profiles.get(snap.key) == snap:
            # A status write or a label change: the spec, generation and deletion state
            # (``_held`` folds ``status.removalAllowed`` into it) are what the agent keeps.
            return
        affected = {snap.key} | dependents(snap.key, self.profiles)
        if event_type is None or (event_type == "ADDED" and snap.key in self.profiles):
            # A (re)list after a watch restart (410 Gone, a cut stream): objects deleted
            # meanwhile get no event at all, so check against a full list (one per burst).
            self._full_due = True
        if event_type == "DELETED":
            self.profiles.pop(snap.key, None)
            self._gone.add(snap.key)
        else:
            self.profiles[snap.key] = snap
            self._gone.discard(snap.key)
        self._dirty |= affected | dependents(snap.key, self.profiles)
        self._wake.set()

    def request_full(self) -> None:
        """Ask for a full resync (API list and check of every file) at the next wake-up."""
        self._full_due = True
        self._wake.set()

    def start_watch(self) -> None:
        """Start watching the managed directory (idempotent); needs a running event loop.

        Creates the :class:`nodefs.DirWatch` and a task that reads its events and turns
        them into hints for the next pass; the watches themselves are set up by the next
        pass (:meth:`reconcile`), which also reports ``status.fileWatch``.
        """
        if self._watch is not None:
            return
        self._watch = self._watch_factory()
        self._watch_due = True
        self._start_reader()
        self._wake.set()

    async def stop_watch(self) -> None:
        """Stop reading events and close the inotify instance (idempotent)."""
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        self._hints.clear()
        self.report.file_watch, self.report.file_watch_message = c.FILE_WATCH_DISABLED, ""
        self.file_metrics.active.set(0)

    def _start_reader(self) -> None:
        if self._watch is None or (self._watch_task is not None and not self._watch_task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # reconcile() called outside a loop (offline use): nothing reads events
            return
        self._watch_task = loop.create_task(
            self._read_events(self._watch), name=f"agent-watch-{self.cfg.node_name}"
        )

    async def _read_events(self, watch: nodefs.DirWatch) -> None:
        """Read inotify events forever, queue their hints and wake the loop (no polling)."""
        while True:
            try:
                events = await watch.next_events(c.WATCH_DRAIN_EVENTS)
            except (OSError, ValueError) as e:
                # The next full pass sets the watch up again (not the next pass: a
                # descriptor that fails every read would make that a busy loop).
                self._watch_lost(f"reading inotify events failed: {e}")
                self._wake.set()  # publish the state
                return
            self.file_metrics.events.inc(len(events))
            for event in events:
                hint = watch.translate(event)
                if hint is None or self._check_all:
                    continue
                if len(self._hints) >= c.WATCH_HINTS_CAP:
                    self._hints.clear()
                    self._check_all = True  # beyond the cap: one check of everything
                else:
                    self._hints.append(hint)
            self._wake.set()

    # --- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Reconcile on every wake-up and every ``resync_seconds``; never returns.

        With ``cfg.watch``, the managed directory is watched while this runs (stopped
        when the task is cancelled).
        """
        if self.cfg.watch:
            self.start_watch()
        try:
            next_full = 0.0
            while True:
                now = time.monotonic()
                if now >= next_full:
                    self._full_due = True
                if self._full_due:
                    next_full = now + self.cfg.resync_seconds
                await self.step()
                timeout = max(0.0, next_full - time.monotonic())
                # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for loses a
                # cancellation that arrives as the wake-up completes (then the agent would
                # not stop until its next resync); timeout() counts cancellations right.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
        finally:
            await self.stop_watch()

    async def step(self) -> None:
        """One pass: optional full list, reconcile, report.  Errors are logged, not raised."""
        self._wake.clear()
        if not self._root_resolved:
            await self._resolve_root()
            if not self._root_resolved:  # never write under a root the label may override
                await self.publish()
                return
        full = self._full_due
        self._full_due = False
        if full and self.api is not None:
            try:
                items = await self.api.list_profiles()
            except ApiError as e:
                logger.warning("listing SeccompProfiles failed, keeping every file: %s", e, extra=self._log())
                items = None
            if items is not None:
                fresh: dict[str, ProfileSnapshot] = {}
                for body in items:
                    try:
                        snap = _held(snapshot_from_body(body), body)
                    except ValueError:
                        continue
                    fresh[snap.key] = snap
                self._gone |= set(self.profiles) - set(fresh)
                self.profiles = fresh
                self.authoritative = True
        elif full:
            self.authoritative = True  # offline: what was observed is all there is
        try:
            self.reconcile(full=full)
        except Exception:  # a bug must not kill the agent loop; report and retry later
            logger.exception("reconcile failed", extra=self._log())
            self._full_due = True
        await self.publish()
        if self.authoritative and full and self.report.state == "Ready":
            self.synced.set()
        if self.synced.is_set() and not self.taint_done and not self._fs_failed and self.api is not None:
            await self._remove_taint()

    async def _resolve_root(self) -> None:
        """Read this Node's labels; the kubelet-root label overrides ``cfg.kubelet_root``.

        A label that is not an absolute normalised path is an agent Error (nothing is
        written); a failed read is retried at the next step, and meanwhile nothing is
        written either (the label may point elsewhere).
        """
        assert self.api is not None
        try:
            labels = await self.api.get_node_labels(self.cfg.node_name)
        except ApiError as e:
            self.report.state, self.report.message = c.NODE_ERROR, f"cannot read this Node's labels: {e}"
            self._full_due = True
            return
        value = (labels or {}).get(c.KUBELET_ROOT_LABEL)
        if value:
            root = str(value)
            if not root.startswith("/") or posixpath.normpath(root) != root:
                self.report.state = c.NODE_ERROR
                self.report.message = (
                    f"node label {c.KUBELET_ROOT_LABEL}={root!r} is not an absolute normalised path"
                )
                self._full_due = True
                return
            if root != self.kubelet_root:
                logger.info("kubelet root %s (from the node label)", root, extra=self._log())
                self.dir.close()
                self.dir = nodefs.ManagedDir(root)
                self.kubelet_root = root
                self._dir_open = False
                self._seen.clear()
                self._seen_inodes.clear()
                self._watch_due = True
        self._root_resolved = True

    async def _remove_taint(self) -> None:
        """Remove the not-ready taint from this node; retried at the next step on failure."""
        assert self.api is not None
        try:
            removed = await self.api.remove_node_taint(
                self.cfg.node_name, c.NOT_READY_TAINT_KEY, c.NOT_READY_TAINT_EFFECT
            )
        except ApiError as e:
            logger.warning("could not remove the not-ready taint (will retry): %s", e, extra=self._log())
            return
        if removed:
            logger.info("all profiles installed; removed taint %s", c.NOT_READY_TAINT_KEY, extra=self._log())
        self.taint_done = True

    # --- files ----------------------------------------------------------------------
    def _open_dir(self) -> bool:
        if self._dir_open:
            return True
        try:
            self.dir.open(candidates=self.cfg.kubelet_root_candidates)
        except nodefs.NodeFSError as e:
            self.report.state = c.NODE_ERROR
            self.report.message = _root_message(e, self.cfg.kubelet_root_candidates)
            self.metrics.write_error(e.reason)
            logger.error("cannot use the kubelet root: %s", e, extra=self._log())
            return False
        self._dir_open = True
        self.report.state, self.report.message = "Ready", ""
        return True

    def reconcile(self, *, full: bool) -> Report:
        """Make the managed directory match the known profiles; return the report.

        Args:
            full: check every profile and every file on disk (else only the dirty ones,
                and the files the directory watch hinted at whose identity changed).
        """
        if not self._open_dir():
            self._full_due = True
            return self.report
        try:
            return self._reconcile_open(full=full)
        finally:
            if self._watch is not None:
                # Hold no descriptor of the managed directory between passes: the kernel
                # sends IN_DELETE_SELF for a removed directory only once its last
                # reference goes, and an open descriptor is one (seen on Linux 6.x).
                self.dir.close()
                self._dir_open = False

    def _reconcile_open(self, *, full: bool) -> Report:
        self._disk_ops = 0
        self._watch_keys = self._take_hints(full)
        keys = set(self.profiles) | self._gone if full else set(self._dirty) | self._gone
        self._dirty.clear()
        on_disk: set[str] = set()
        scan: nodefs.Scan | None = None
        if full:
            try:
                self.dir.cleanup_temp()
                scan = self.dir.scan()
            except nodefs.NodeFSError as e:
                self.report.state, self.report.message = c.NODE_ERROR, str(e)
                self._dir_open = False
                self._full_due = True
                return self.report
            on_disk = {paths.profile_key(ns, nm) for ns, nm in scan.profiles}
            for anomaly in scan.anomalies:
                logger.warning("unexpected entry in the managed directory: %s", anomaly, extra=self._log())
            keys |= on_disk
        for key in sorted(keys):
            self._reconcile_one(key)
        for key in list(self.report.entries):
            if key not in self.profiles and key not in keys and full and self.authoritative:
                del self.report.entries[key]
                self._forget(key)
        if full or self._scan_due:
            # What is left once the agent repaired what it manages (a pass that changed
            # nothing on disk reuses its own scan).
            self._refresh_foreign(scan if scan is not None and self._disk_ops == 0 else None)
        self._watch_keys = set()
        counts: dict[str, int] = {}
        for entry in self.report.entries.values():
            counts[entry.state] = counts.get(entry.state, 0) + 1
        self.metrics.set_states(counts)
        return self.report

    def _reconcile_one(self, key: str) -> None:
        namespace, name = paths.split_key(key)
        snap = self.profiles.get(key)
        try:
            path = self.dir.path_of(namespace, name)
        except paths.UnsafeNameError as e:
            logger.error("refusing profile with an unsafe name %r: %s", key, e, extra=self._log())
            return
        if snap is None:
            if key in self._gone or self.authoritative:
                self._remove(key, namespace, name, path, drop=True)
            return
        if not snap.wanted:
            self._remove(key, namespace, name, path, drop=False)
            return
        try:
            rendered = self.renderer.render(snap, self.profiles)
        except ProfileError as e:
            self._forget(key)
            self._set(
                key,
                c.NODE_ERROR,
                self._hash_on_disk(namespace, name),
                path,
                f"not written: {summary(e.findings, 3)}",
            )
            return
        started = time.perf_counter()
        prev = self.report.entries.get(key)
        try:
            # write() replaces a planted symlink or hard link itself (rename never
            # writes through a link) and skips the write when the bytes already match.
            wrote = self.dir.write(namespace, name, rendered.content)
            found = self.dir.read_entry(namespace, name)
        except nodefs.NodeFSError as e:
            self.metrics.write_error(e.reason)
            self._fs_failed.add(key)
            self._forget(key)
            self._set(key, c.NODE_ERROR, self._hash_on_disk(namespace, name), path, f"{e.reason}: {e}")
            return
        self.metrics.observe_write(time.perf_counter() - started)
        self._fs_failed.discard(key)
        if wrote:
            self._count_write(key, prev, rendered.sha256, path)
        back, identity = found if found is not None else (None, None)
        if back != rendered.content:
            self._forget(key)
            self._set(
                key, c.NODE_ERROR, sha256_hex(back or b""), path, "read-back differs from the written bytes"
            )
            return
        self._remember(key, identity)
        warn = summary([f for f in rendered.findings], 2) if rendered.findings else ""
        self._set(key, c.NODE_INSTALLED, rendered.sha256, path, warn)

    def _count_write(self, key: str, prev: Entry | None, content_hash: str, path: str) -> None:
        """Count one file replacement; a replacement of an Installed file with the same
        content is a repair (the file was changed on disk by something else)."""
        self._disk_ops += 1
        self.file_metrics.writes.inc()
        if prev is not None and prev.state == c.NODE_INSTALLED and prev.content_hash == content_hash:
            trigger = TRIGGER_WATCH if key in self._watch_keys else TRIGGER_RESYNC
            self.file_metrics.repairs[trigger].inc()
            logger.warning(
                "restored %s: it was changed on disk by something else (noticed by the %s)",
                path,
                trigger,
                extra=self._log(key),
            )

    def _remove(self, key: str, namespace: str, name: str, path: str, *, drop: bool) -> None:
        try:
            removed = self.dir.remove(namespace, name)
        except nodefs.NodeFSError as e:
            self.metrics.write_error(e.reason)
            self._forget(key)
            self._set(key, c.NODE_ERROR, "", path, f"cannot remove: {e}")
            return
        if removed:
            self._disk_ops += 1
        self._fs_failed.discard(key)
        self._gone.discard(key)
        if drop:
            self._forget(key)
            self.report.entries.pop(key, None)
        else:
            self._remember(key, None)
            self._set(key, c.NODE_REMOVED, "", path, "")

    def _hash_on_disk(self, namespace: str, name: str) -> str:
        try:
            data = self.dir.read(namespace, name)
        except nodefs.NodeFSError:
            return ""
        return sha256_hex(data) if data is not None else ""

    def _set(self, key: str, state: str, content_hash: str, path: str, message: str) -> None:
        prev = self.report.entries.get(key)
        changed = prev is None or prev.state != state or prev.content_hash != content_hash
        since = now_rfc3339() if changed or prev is None else prev.since
        self.report.entries[key] = Entry(state, content_hash, path, message[: c.MESSAGE_CAP], since)
        if state == c.NODE_ERROR and changed:
            logger.error("profile %s: %s", key, message, extra=self._log(key))

    # --- the directory watch: hints to checks ------------------------------------------------
    def _remember(self, key: str, identity: nodefs.FileId | None) -> None:
        """Record the identity of ``key``'s file as the agent leaves it (None: no entry)."""
        self._forget(key)
        self._seen[key] = identity
        if identity is not None:
            self._seen_inodes[(identity.dev, identity.ino)] = key

    def _forget(self, key: str) -> None:
        old = self._seen.pop(key, None)
        if old is not None and self._seen_inodes.get((old.dev, old.ino)) == key:
            del self._seen_inodes[(old.dev, old.ino)]

    def _take_hints(self, full: bool) -> set[str]:
        """Turn the watch's hints into profile keys to re-check; return the keys made dirty.

        Arms the watch when due (first pass, managed directory deleted or moved, events
        lost, or at a full pass after it was unavailable), watches namespace directories
        that appeared, and compares each hinted profile file's lstat identity with the one
        recorded after the agent's own last write, read-back or removal: only a
        difference, or bytes written in place, makes the key dirty (so the agent's own
        renames and removals, whose events arrive after it recorded their result, are
        ignored).  A hard link appearing anywhere in the directory also checks the profile
        whose inode it shares.  Foreign entries that appear, or listed ones that go,
        schedule a refresh of ``report.foreign``.  A full pass checks every file anyway:
        there only the watches are updated.
        """
        if self._watch is None:
            return set()
        hints, self._hints = self._hints, []
        check_all, self._check_all = self._check_all, False
        candidates: dict[str, bool] = {}  # profile key -> bytes were written in place
        entries: set[tuple[str, str]] = set()  # (namespace or "", name) of non-profile names
        namespaces: set[str] = set()
        for hint in hints:
            if hint.kind in ("managed", "overflow"):
                self._watch_due = check_all = self._scan_due = True
            elif hint.kind == "namespace":
                namespaces.add(hint.namespace)
            elif not hint.namespace:
                if hint.is_dir and _is_component(hint.name, "namespace"):
                    namespaces.add(hint.name)
                else:
                    entries.add(("", hint.name))
            elif (name := nodefs.profile_name(hint.name)) is not None:
                key = paths.profile_key(hint.namespace, name)
                candidates[key] = candidates.get(key, False) or hint.data_changed
            else:
                entries.add((hint.namespace, hint.name))
        if (self._watch_due or (full and self.report.file_watch == c.FILE_WATCH_UNAVAILABLE)) and (
            self._arm_watch()
        ):
            check_all = True  # whatever changed before the watches existed
        for ns in sorted(namespaces):
            if not _is_component(ns, "namespace"):
                entries.add(("", ns))
                continue
            if not self._watch_namespace(ns):
                entries.add(("", ns))  # gone, or something else now sits at its name
            if self._listed(ns):
                self._scan_due = True
            for key in self._keys_in(ns):
                candidates.setdefault(key, False)
        if full:
            return set()
        if check_all:
            self._scan_due = True
            for key in set(self.profiles) | self._gone | set(self._seen):
                candidates.setdefault(key, False)
        # lstat every entry concerned, opening each directory once.
        names: dict[str, set[str]] = {}
        for key in candidates:
            namespace, name = paths.split_key(key)
            names.setdefault(namespace, set()).add(name + c.PROFILE_SUFFIX)
        for namespace, entry in entries:
            names.setdefault(namespace, set()).add(entry)
        found: dict[tuple[str, str], nodefs.FileId | None] = {}
        failed: set[str] = set()  # namespaces that could not be inspected
        for namespace, group in sorted(names.items()):
            try:
                ids = self.dir.entry_ids(namespace, sorted(group))
            except (nodefs.NodeFSError, paths.UnsafeNameError):
                failed.add(namespace)  # the pass (or the scan) finds out what is wrong
                self._scan_due = True
                continue
            found.update(((namespace, entry), fid) for entry, fid in ids.items())
        dirty: set[str] = set()
        # Names no profile wants: an orphan regular file is collected as the full resync
        # would (once the list was authoritative); anything else is foreign.  A hard link
        # among foreign entries shares its inode with a profile file, which is then
        # rewritten (its recorded identity always has one link, so it changed).
        for key in [k for k in candidates if k not in self.profiles and k not in self._gone]:
            del candidates[key]
            namespace, name = paths.split_key(key)
            if namespace in failed:
                continue
            identity = found.get((namespace, name + c.PROFILE_SUFFIX))
            if identity is not None and identity.single_regular:
                dirty.add(key)
            elif (partner := self._note_foreign(key + c.PROFILE_SUFFIX, identity)) is not None:
                dirty.add(partner)
        for namespace, entry in sorted(entries):
            if namespace in failed:
                continue
            identity = found.get((namespace, entry))
            partner = self._note_foreign(f"{namespace}/{entry}" if namespace else entry, identity)
            if partner is not None:
                dirty.add(partner)
        # Wanted (or deleted) profiles: re-check those written in place or whose identity
        # is not the one the agent left.
        for key, forced in sorted(candidates.items()):
            namespace, name = paths.split_key(key)
            identity = found.get((namespace, name + c.PROFILE_SUFFIX))
            if namespace in failed or forced or key not in self._seen or self._seen[key] != identity:
                dirty.add(key)
            elif key not in dirty:
                self.file_metrics.ignored.inc()
        self._dirty |= dirty
        return dirty

    def _note_foreign(self, rel: str, identity: nodefs.FileId | None) -> str | None:
        """Schedule a refresh of ``report.foreign`` if the entry ``rel`` exists or is
        listed; return the profile key whose inode it shares (a planted hard link)."""
        if identity is None:
            if self._listed(rel):
                self._scan_due = True
            return None
        self._scan_due = True
        if identity.nlink > 1:
            return self._seen_inodes.get((identity.dev, identity.ino))
        return None

    def _listed(self, rel: str) -> bool:
        """Whether ``rel`` (or anything below it) may be in ``report.foreign``."""
        if self.report.foreign_count > len(self.report.foreign):
            return True  # the list is capped: anything may be among the unlisted
        shown = nodefs.printable(rel)
        return any(f.path == shown or f.path.startswith(shown + "/") for f in self.report.foreign)

    def _keys_in(self, namespace: str) -> set[str]:
        prefix = namespace + "/"
        return {k for k in (*self.profiles, *self._gone, *self._seen) if k.startswith(prefix)}

    def _arm_watch(self) -> bool:
        """(Re)arm every watch; True if the managed directory is watched afterwards."""
        watch = self._watch
        assert watch is not None
        self._watch_due = False
        try:
            watch.arm(self.dir)
        except nodefs.WatchUnavailable as e:
            self._watch_lost(e.message)
            self._start_reader()
            return watch.armed  # a partial cover still helps; the next full pass retries
        except nodefs.NodeFSError:
            self._watch_due = True  # the pass reports what is wrong with the directory
            return False
        if self.report.file_watch != c.FILE_WATCH_ACTIVE:
            logger.info(
                "watching %s and %d namespace directories for changes",
                self.dir.managed_path,
                len(watch.namespaces),
                extra=self._log(),
            )
        self.report.file_watch, self.report.file_watch_message = c.FILE_WATCH_ACTIVE, ""
        self.file_metrics.active.set(1)
        self._start_reader()
        return True

    def _watch_namespace(self, namespace: str) -> bool:
        watch = self._watch
        if watch is None:
            return False
        try:
            return watch.add_namespace(self.dir, namespace)
        except nodefs.WatchUnavailable as e:
            self._watch_lost(e.message)
        except (nodefs.NodeFSError, paths.UnsafeNameError):
            pass
        return False

    def _watch_lost(self, message: str) -> None:
        """The watch does not cover the directory: say so (a warning once per outage)."""
        text = (
            f"{message}; files changed by hand are restored at the next full resync "
            f"(every {self.cfg.resync_seconds:g} s)"
        )
        if self.report.file_watch != c.FILE_WATCH_UNAVAILABLE:
            logger.warning("file watch unavailable: %s", text, extra=self._log())
        self.report.file_watch = c.FILE_WATCH_UNAVAILABLE
        self.report.file_watch_message = text[: c.MESSAGE_CAP]
        self.file_metrics.active.set(0)

    def _refresh_foreign(self, scan: nodefs.Scan | None) -> None:
        """Set ``report.foreign`` from ``scan`` (None: scan the directory now)."""
        self._scan_due = False
        if scan is None:
            try:
                scan = self.dir.scan()
            except nodefs.NodeFSError as e:
                logger.warning("listing the managed directory failed: %s", e, extra=self._log())
                return
        # The first entries by path (the scan sorts them); only those are made printable.
        listed = [
            ForeignEntry(nodefs.printable(a.path), a.foreign, nodefs.printable(a.detail))
            for a in scan.anomalies[: c.FOREIGN_ENTRIES_CAP]
        ]
        self.report.foreign = sorted(listed, key=lambda f: f.path)
        self.report.foreign_count = len(scan.anomalies)

    # --- reporting ----------------------------------------------------------------------
    async def publish(self) -> None:
        """Write this node's SeccompNodeStatus if the report changed since the last write.

        Only changed profile entries are sent (merge patch; ``null`` removes an entry).
        A failed write is retried at the next wake-up.
        """
        if self.api is None:
            return
        status = self.report.status(self.cfg, self.kubelet_root)
        if status == self._written_status:
            return
        try:
            if self._written_status is None:
                await self._create_or_replace(status)
            else:
                await self.api.patch_node_status(
                    self.cfg.node_name, {"status": _diff(self._written_status, status)}
                )
        except ApiError as e:
            logger.warning("reporting node status failed (will retry): %s", e, extra=self._log())
            self._written_status = None
            self._full_due = True
            return
        self._written_status = status
        if self.on_reported is not None:
            await self.on_reported()

    async def _create_or_replace(self, status: dict[str, Any]) -> None:
        assert self.api is not None
        existing = await self.api.get_node_status(self.cfg.node_name)
        if existing is None:
            uid = await self.api.get_node_uid(self.cfg.node_name)
            meta: dict[str, Any] = {"name": self.cfg.node_name, "labels": {c.APP_LABEL: c.APP_LABEL_VALUE}}
            if uid:
                meta["ownerReferences"] = [
                    {"apiVersion": "v1", "kind": "Node", "name": self.cfg.node_name, "uid": uid}
                ]
            body = {
                "apiVersion": c.API_VERSION,
                "kind": c.NODE_STATUS_KIND,
                "metadata": meta,
                "status": status,
            }
            try:
                await self.api.create_node_status(body)
                return
            except ApiError as e:
                if e.status != 409:
                    raise
                existing = await self.api.get_node_status(self.cfg.node_name) or {}
        old = dict((existing or {}).get("status") or {})
        await self.api.patch_node_status(self.cfg.node_name, {"status": _diff(old, status)})

    def _log(self, profile: str | None = None) -> dict[str, Any]:
        return {"node": self.cfg.node_name, "profile": profile or "-"}


def _root_message(e: nodefs.NodeFSError, checked: tuple[str, ...]) -> str:
    """A short per-node message for a kubelet root problem, candidates first (status caps messages).

    Shape: ``kubelet root X not found on node (detected candidates: A, B; checked: ...);
    set the node label seccomp-operator.dev/kubelet-root``.
    """
    if not isinstance(e, nodefs.KubeletRootMissing):
        return str(e)
    found = ", ".join(e.candidates_present) or "none"
    return (
        f"kubelet root {e.path} not found on node (detected candidates: {found}; "
        f"checked: {', '.join(checked)}); set the node label {c.KUBELET_ROOT_LABEL}; nothing was created"
    )


def _held(snap: ProfileSnapshot, body: Mapping[str, Any]) -> ProfileSnapshot:
    """A profile being deleted stays installed until the controller allows removal.

    The controller sets ``status.removalAllowed`` once no pod uses the profile
    any more (deletion protection); until then the agent treats the profile as
    not being deleted, so a pod starting or restarting still finds its file.
    """
    if not snap.deleting:
        return snap
    status = body.get("status")
    if isinstance(status, Mapping) and status.get("removalAllowed") is True:
        return snap
    return dataclasses.replace(snap, deleting=False)


def _is_component(value: str, what: str) -> bool:
    try:
        paths.check_component(value, what)
    except paths.UnsafeNameError:
        return False
    return True


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning ``old`` into ``new``, one level into the maps
    ``profiles`` and ``foreignEntries`` (only changed entries are sent)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key in _MAP_FIELDS:
            old_p = old.get(key) or {}
            sub = {k: v for k, v in value.items() if old_p.get(k) != v}
            sub.update({k: None for k in old_p if k not in value})
            if sub:
                patch[key] = sub
        elif old.get(key) != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
