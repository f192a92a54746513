"""The controller's logic: aggregate node reports into each profile's status.

:class:`Controller` keeps snapshots of what the watch streams deliver (profiles,
node reports, Nodes, agent pods), marks the affected profiles dirty, and a single
loop (:meth:`Controller.run`) writes each dirty profile's status at most once per
``status_interval`` seconds, and only when it differs from what the object already
carries.  The status itself is computed by :func:`rollout.profile_status`.

It also decides when a deleted profile's finalizer may go
(:meth:`Controller.deletion_blockers`) and posts events for invalid specs and node
failures.  No kopf here: the handlers module feeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import constants as c
from . import paths, rollout
from .findings import ProfileError
from .kube import ApiError, now_rfc3339
from .profiles import (
    ProfileSnapshot,
    Renderer,
    dependents,
    is_base_missing,
    problem_findings,
    snapshot_from_body,
)

logger = logging.getLogger("seccomp_operator.controller")


class ControllerApi(Protocol):
    """The API calls the controller makes itself (implemented by :class:`kube.KubeApi`)."""

    async def patch_profile_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...
    async def delete_node_status(self, name: str) -> None: ...
    async def post_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type_: str = ...,
        component: str = ...,
    ) -> None: ...


@dataclass
class ControllerConfig:
    """Settings of the controller.

    Attributes:
        status_interval: minimum seconds between two status writes of one profile.
    """

    status_interval: float = 1.0


@dataclass
class _Tracked:
    snap: ProfileSnapshot
    body_ref: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)


class Controller:
    """Aggregates per-node reports into profile status; see the module docstring."""

    def __init__(self, cfg: ControllerConfig, api: ControllerApi) -> None:
        self.cfg = cfg
        self.api = api
        self.renderer = Renderer()
        self.profiles: dict[str, _Tracked] = {}
        self.reports: dict[str, Mapping[str, Any]] = {}
        self.nodes: set[str] = set()
        self.agents: dict[str, tuple[str, rollout.AgentInfo]] = {}
        self._dirty: set[str] = set()
        self._last_write: dict[str, float] = {}
        self._events_sent: dict[tuple[str, str], str] = {}
        self._wake = asyncio.Event()

    # --- inputs (called by the watch handlers) ------------------------------------------
    def observe_profile(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SeccompProfile event."""
        try:
            snap = snapshot_from_body(body)
        except ValueError:
            return
        snaps = {k: t.snap for k, t in self.profiles.items()}
        if event_type == "DELETED":
            self.profiles.pop(snap.key, None)
            self._last_write.pop(snap.key, None)
            self._events_sent = {k: v for k, v in self._events_sent.items() if k[0] != snap.key}
        else:
            meta = body.get("metadata") or {}
            ref = {
                "apiVersion": c.API_VERSION,
                "kind": c.PROFILE_KIND,
                "metadata": {"name": snap.name, "namespace": snap.namespace, "uid": meta.get("uid")},
            }
            status = body.get("status")
            self.profiles[snap.key] = _Tracked(
                snap, ref, _plain_dict(status) if isinstance(status, Mapping) else {}
            )
        self._mark({snap.key} | dependents(snap.key, snaps))

    def observe_report(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SeccompNodeStatus event: every profile it mentions (before or after) is dirty."""
        name = (body.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            return
        before = set((self.reports.get(name) or {}).get("profiles") or {})
        if event_type == "DELETED":
            self.reports.pop(name, None)
            after: set[str] = set()
        else:
            status = body.get("status")
            self.reports[name] = _plain_dict(status) if isinstance(status, Mapping) else {}
            after = set(self.reports[name].get("profiles") or {})
            if self.reports[name].get("state") == c.NODE_ERROR:
                after = set(self.profiles)
        self._mark(before | after)

    def observe_node(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Node event: node churn changes every profile's desired count."""
        name = (body.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            return
        if event_type == "DELETED":
            self.nodes.discard(name)
        else:
            self.nodes.add(name)
        self._mark(set(self.profiles))

    def observe_agent_pod(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An agent pod event: its readiness decides whether its node's report counts."""
        meta = body.get("metadata") or {}
        pod_key = f"{meta.get('namespace')}/{meta.get('name')}"
        read = None if event_type == "DELETED" else rollout.agent_from_pod(body)
        old = self.agents.get(pod_key)
        if read is None:
            self.agents.pop(pod_key, None)
        else:
            self.agents[pod_key] = read
        if old != read:
            self._mark(set(self.profiles))

    def _mark(self, keys: set[str]) -> None:
        if keys:
            self._dirty |= keys
            self._wake.set()

    # --- views -------------------------------------------------------------------------
    def node_views(self) -> list[rollout.NodeView]:
        """One view per existing Node: its best agent pod and its report."""
        per_node: dict[str, list[rollout.AgentInfo]] = {}
        for node, info in self.agents.values():
            per_node.setdefault(node, []).append(info)
        return [
            rollout.NodeView(n, rollout.best_agent(per_node.get(n, [])), self.reports.get(n))
            for n in sorted(self.nodes)
        ]

    def verdict(self, snap: ProfileSnapshot) -> rollout.Verdict:
        """Render ``snap`` as the agents will and say what hash to expect, or why none."""
        snaps = {k: t.snap for k, t in self.profiles.items()}
        try:
            rendered = self.renderer.render(snap, snaps)
        except ProfileError as e:
            reason = c.REASON_BASE_MISSING if is_base_missing(e) else c.REASON_INVALID_SPEC
            return rollout.Verdict(None, reason, problem_findings(e))
        return rollout.Verdict(rendered.sha256, None, tuple(rendered.findings))

    def compute_status(self, key: str) -> dict[str, Any] | None:
        """The status ``key`` should carry now, or None if the profile is unknown."""
        tracked = self.profiles.get(key)
        if tracked is None:
            return None
        snap = tracked.snap
        return rollout.profile_status(
            namespace=snap.namespace,
            name=snap.name,
            generation=snap.generation,
            enabled=snap.enabled,
            deleting=snap.deleting,
            verdict=self.verdict(snap),
            nodes=self.node_views(),
            previous=tracked.status,
            now=now_rfc3339(),
            localhost_profile=paths.localhost_profile(snap.namespace, snap.name),
        )

    def deletion_blockers(self, key: str) -> list[str]:
        """Nodes that still hold the file of ``key`` (see :func:`rollout.deletion_blockers`)."""
        return rollout.deletion_blockers(key, self.node_views())

    # --- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Write dirty statuses, coalesced per profile; never returns."""
        while True:
            delay = await self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def flush(self) -> float | None:
        """Write every dirty profile whose interval has passed.

        Returns:
            seconds until the next profile becomes due, or None if nothing is dirty.
        """
        self._wake.clear()
        now = time.monotonic()
        due_in: float | None = None
        for key in sorted(self._dirty):
            wait = self._last_write.get(key, -1e9) + self.cfg.status_interval - now
            if wait > 0:
                due_in = wait if due_in is None else min(due_in, wait)
                continue
            self._dirty.discard(key)
            await self._write_status(key)
        return due_in

    async def _write_status(self, key: str) -> None:
        tracked = self.profiles.get(key)
        if tracked is None:
            return
        try:
            status = self.compute_status(key)
        except paths.UnsafeNameError as e:
            logger.error("profile %s has an unusable name: %s", key, e, extra={"profile": key})
            return
        if status is None:
            return
        await self._events(key, tracked, status)
        if _same(status, tracked.status):
            return
        snap = tracked.snap
        try:
            await self.api.patch_profile_status(snap.namespace, snap.name, status)
        except ApiError as e:
            if e.status == 404:
                return
            logger.warning("status write for %s failed (will retry): %s", key, e, extra={"profile": key})
            self._mark({key})
            return
        self._last_write[key] = time.monotonic()
        tracked.status = {k: v for k, v in status.items() if v is not None}

    async def _events(self, key: str, tracked: _Tracked, status: Mapping[str, Any]) -> None:
        """Post an event when the invalid verdict or a node failure is new (once each)."""
        phase = status.get("phase")
        if phase == c.PHASE_INVALID:
            msg = "; ".join(_findings_text(status)[:5])
            await self._event_once(key, "invalid", msg, tracked, c.EVENT_INVALID, "Warning")
        for node in status.get("notReadyNodes") or []:
            if node.get("state") == c.NODE_ERROR:
                msg = f"node {node.get('name')}: {node.get('message')}"
                await self._event_once(
                    key, f"node:{node.get('name')}", msg, tracked, c.EVENT_NODE_ERROR, "Warning"
                )
        if phase == c.PHASE_INSTALLED:
            msg = f"installed on {status.get('ready')} nodes (content {str(status.get('contentHash'))[:12]})"
            await self._event_once(key, "ready", msg, tracked, c.EVENT_READY, "Normal")

    async def _event_once(
        self, key: str, slot: str, message: str, tracked: _Tracked, reason: str, type_: str
    ) -> None:
        if self._events_sent.get((key, slot)) == message:
            return
        self._events_sent[(key, slot)] = message
        await self.api.post_event(tracked.body_ref, reason=reason, message=message, type_=type_)

    async def forget_node(self, name: str) -> None:
        """A Node is gone: drop its report object too (owner references do the same in a cluster)."""
        try:
            await self.api.delete_node_status(name)
        except ApiError as e:
            logger.warning(
                "could not delete the report of deleted node %s: %s", name, e, extra={"node": name}
            )


def _findings_text(status: Mapping[str, Any]) -> list[str]:
    return [
        f"{f.get('path')}: {f.get('message')}" for f in status.get("findings") or [] if isinstance(f, Mapping)
    ]


def _plain_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        out[str(k)] = _plain_dict(v) if isinstance(v, Mapping) else (list(v) if isinstance(v, list) else v)
    return out


def _same(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Equal once ``None`` values (deleted keys in a merge patch) are dropped."""
    return {k: v for k, v in new.items() if v is not None} == {k: v for k, v in old.items() if v is not None}
