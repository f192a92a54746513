"""The node agent's logic: keep the managed directory equal to the live profiles.

Level-based: :class:`Agent` holds the profiles it has seen (fed by watch events
through :meth:`Agent.observe`), and :meth:`Agent.reconcile` makes the directory
match: renders every wanted profile, writes it atomically when the bytes differ,
reads it back, removes files of disabled or deleted profiles, and returns the
per-profile report.  :meth:`Agent.run` loops on wake-ups and a periodic full resync
that re-reads the live list from the API and re-checks every file on disk (so files
deleted or changed by hand are restored, and files of profiles deleted while the
agent was down are removed).

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
from typing import Any, Protocol

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


@dataclass
class Report:
    """The whole node report: agent state plus one :class:`Entry` per profile."""

    state: str = "Ready"
    message: str = ""
    entries: dict[str, Entry] = field(default_factory=dict)

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
        }


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the content hash reported for files on disk)."""
    return hashlib.sha256(data).hexdigest()


class Agent:
    """One node's agent: profiles in memory, files on disk, a report for the API.

    Args:
        cfg: see :class:`AgentConfig`.
        api: the API seam (None for offline use: no list, no report).
        directory: the managed directory; defaults to ``nodefs.ManagedDir(cfg.kubelet_root)``.
    """

    def __init__(
        self, cfg: AgentConfig, api: AgentApi | None, directory: nodefs.ManagedDir | None = None
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

    # --- inputs ---------------------------------------------------------------------
    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Feed one watch event (``ADDED``/``MODIFIED``/``DELETED``, or None while listing)."""
        try:
            snap = _held(snapshot_from_body(body), body)
        except ValueError:
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

    # --- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Reconcile on every wake-up and every ``resync_seconds``; never returns."""
        next_full = 0.0
        while True:
            now = time.monotonic()
            if now >= next_full:
                self._full_due = True
            if self._full_due:
                next_full = now + self.cfg.resync_seconds
            await self.step()
            timeout = max(0.0, next_full - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

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
            full: check every profile and every file on disk (else only the dirty ones).
        """
        if not self._open_dir():
            self._full_due = True
            return self.report
        keys = set(self.profiles) | self._gone if full else set(self._dirty) | self._gone
        self._dirty.clear()
        on_disk: set[str] = set()
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
            self._set(
                key,
                c.NODE_ERROR,
                self._hash_on_disk(namespace, name),
                path,
                f"not written: {summary(e.findings, 3)}",
            )
            return
        started = time.perf_counter()
        try:
            # write() replaces a planted symlink or hard link itself (rename never
            # writes through a link) and skips the write when the bytes already match.
            self.dir.write(namespace, name, rendered.content)
            back = self.dir.read(namespace, name)
        except nodefs.NodeFSError as e:
            self.metrics.write_error(e.reason)
            self._fs_failed.add(key)
            self._set(key, c.NODE_ERROR, self._hash_on_disk(namespace, name), path, f"{e.reason}: {e}")
            return
        self.metrics.observe_write(time.perf_counter() - started)
        self._fs_failed.discard(key)
        if back != rendered.content:
            self._set(
                key, c.NODE_ERROR, sha256_hex(back or b""), path, "read-back differs from the written bytes"
            )
            return
        warn = summary([f for f in rendered.findings], 2) if rendered.findings else ""
        self._set(key, c.NODE_INSTALLED, rendered.sha256, path, warn)

    def _remove(self, key: str, namespace: str, name: str, path: str, *, drop: bool) -> None:
        try:
            self.dir.remove(namespace, name)
        except nodefs.NodeFSError as e:
            self.metrics.write_error(e.reason)
            self._set(key, c.NODE_ERROR, "", path, f"cannot remove: {e}")
            return
        self._fs_failed.discard(key)
        self._gone.discard(key)
        if drop:
            self.report.entries.pop(key, None)
        else:
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


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning ``old`` into ``new``, one level into ``profiles``."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key == "profiles":
            old_p = old.get("profiles") or {}
            sub = {k: v for k, v in value.items() if old_p.get(k) != v}
            sub.update({k: None for k in old_p if k not in value})
            if sub:
                patch["profiles"] = sub
        elif old.get(key) != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
