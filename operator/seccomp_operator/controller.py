"""The controller's logic: aggregate node reports into each profile's status.

:class:`Controller` keeps snapshots of what the watch streams deliver (profiles,
node reports, Nodes, agent pods), marks the affected profiles dirty, and a single
loop (:meth:`Controller.run`) writes each dirty profile's status only when it differs
from what the object already carries, and spaces the writes: two writes go out at
once, the first one for a new generation (so ``observedGeneration`` follows a spec
change) and the one that makes the profile Ready on every node; the others (progress
counts, node errors) wait ``status_interval`` seconds after the previous write,
doubling after each such write up to ``PROGRESS_BACKOFF_MAX`` times the interval, until
the next immediate write.  Every node's watch receives every status write, so a
rollout lasting D seconds costs 2 + about log2(D / status_interval) writes, not
D / status_interval.  The status itself is computed by :func:`rollout.profile_status`.

Cost per event: a node report marks dirty only the profiles whose entry in it
changed, and whether a profile has just become Ready is known from
:class:`rollout.CurrentIndex` without looking at every node; a status is computed
(O(nodes)) only when it is about to be written.

It also decides when a deleted profile's finalizer may go
(:meth:`Controller.deletion_blockers`) and posts events for invalid specs and node
failures.  No kopf here: the handlers module feeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import constants as c
from . import paths, podrefs, policy, rollout
from .findings import ProfileError
from .kube import ApiError, now_rfc3339
from .metrics import ControllerMetrics
from .profiles import (
    ProfileSnapshot,
    Renderer,
    dependents,
    is_base_missing,
    problem_findings,
    snapshot_from_body,
)

logger = logging.getLogger("seccomp_operator.controller")

#: Progress-only status writes back off (1, 2, 4... times ``status_interval``) up to this factor.
PROGRESS_BACKOFF_MAX = 16


class ControllerApi(Protocol):
    """The API calls the controller makes itself (implemented by :class:`kube.KubeApi`)."""

    async def list_nodes(self) -> list[dict[str, Any]]: ...
    async def list_agent_pods(self) -> list[dict[str, Any]]: ...
    async def list_node_statuses(self) -> list[dict[str, Any]]: ...
    async def list_pods(self) -> list[dict[str, Any]]: ...

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
        status_interval: minimum seconds between two status writes of one profile, doubled
            after each progress-only write (up to ``PROGRESS_BACKOFF_MAX`` times); the first
            write of a new generation and the write that makes it Ready go out at once, so
            rollout latency does not depend on it (see the module docstring).
        report_timeout: seconds a node with a ready agent may take to report the
            current content; after that it is ``Unknown`` ("agent has not reported
            within Ns") and no longer shown as progressing.
    """

    status_interval: float = 1.0
    report_timeout: float = c.DEFAULT_REPORT_TIMEOUT


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
        #: Seconds on a monotonic clock (``time.monotonic``; tests substitute their own).
        self.clock: Callable[[], float] = time.monotonic
        self.renderer = Renderer()
        self.profiles: dict[str, _Tracked] = {}
        #: The snapshots of :attr:`profiles` (what rendering looks bases up in).
        self._snaps: dict[str, ProfileSnapshot] = {}
        self.reports: dict[str, Mapping[str, Any]] = {}
        self.nodes: set[str] = set()
        self.agents: dict[str, tuple[str, rollout.AgentInfo]] = {}
        #: Node name -> its view; None when nodes or agents changed (rebuilt on use).
        self._views: dict[str, rollout.NodeView] | None = None
        self._view_order: list[str] = []
        #: Per profile, the nodes that have its current content (see CurrentIndex).
        self.current = rollout.CurrentIndex()
        self._current_stale = True
        self._dirty: set[str] = set()
        self._last_write: dict[str, float] = {}
        #: profile key -> progress-only writes since its last immediate write (the backoff).
        self._backoff: dict[str, int] = {}
        #: profile key -> monotonic time before which a failed write is not retried.
        self._retry_at: dict[str, float] = {}
        self._events_sent: dict[tuple[str, str], str] = {}
        self._wake = asyncio.Event()
        #: pod ``<ns>/<name>`` -> keys of our profiles it uses (only pods that use one).
        self.pod_refs: dict[str, frozenset[str]] = {}
        #: True once a full pod list (or the pod watch's initial listing) was seen.
        self.pods_primed = False
        #: (profile key, node) -> (expected hash, monotonic time the node started lagging).
        self._lagging: dict[tuple[str, str], tuple[str, float]] = {}
        #: profile key -> monotonic time at which a lagging node's report timeout expires.
        self._recheck: dict[str, float] = {}
        #: profile key -> (generation, monotonic time the controller first saw it).
        self._spec_seen: dict[str, tuple[int | None, float]] = {}
        self.metrics = ControllerMetrics()
        #: The SeccompPolicies and namespace labels they select on.
        self.policies = policy.PolicyIndex()

    # --- inputs (called by the watch handlers) ------------------------------------------
    def observe_profile(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SeccompProfile event."""
        try:
            snap = snapshot_from_body(body)
        except ValueError:
            return
        snaps = self._snaps
        old = self.profiles.get(snap.key)
        status = body.get("status")
        if (
            event_type != "DELETED"
            and old is not None
            and old.snap == snap
            and isinstance(status, Mapping)
            and _same(_plain_dict(status), old.status)
        ):
            return  # our own status write coming back: nothing to recompute
        if event_type == "DELETED":
            self.profiles.pop(snap.key, None)
            self._snaps.pop(snap.key, None)
            self.current.forget(snap.key)
            self._last_write.pop(snap.key, None)
            self._backoff.pop(snap.key, None)
            self._retry_at.pop(snap.key, None)
            self._events_sent = {k: v for k, v in self._events_sent.items() if k[0] != snap.key}
            self._lagging = {k: v for k, v in self._lagging.items() if k[0] != snap.key}
            self._recheck.pop(snap.key, None)
            self._spec_seen.pop(snap.key, None)
            self.metrics.forget_profile(snap.key)
        else:
            seen = self._spec_seen.get(snap.key)
            if seen is None or seen[0] != snap.generation:
                self._spec_seen[snap.key] = (snap.generation, self.clock())
            meta = body.get("metadata") or {}
            ref = {
                "apiVersion": c.API_VERSION,
                "kind": c.PROFILE_KIND,
                "metadata": {"name": snap.name, "namespace": snap.namespace, "uid": meta.get("uid")},
            }
            self.profiles[snap.key] = _Tracked(
                snap, ref, _plain_dict(status) if isinstance(status, Mapping) else {}
            )
            self._snaps[snap.key] = snap
        affected = {snap.key} | dependents(snap.key, snaps)
        if old is None or old.snap != snap or event_type == "DELETED":
            for key in affected:
                self._track(key)
        self._mark(affected)

    def observe_report(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SeccompNodeStatus event: every profile it mentions (before or after) is dirty."""
        name = (body.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            return
        old = self.reports.get(name)
        if event_type == "DELETED":
            self.reports.pop(name, None)
            new = None
        else:
            status = body.get("status")
            new = self.reports[name] = _plain_dict(status) if isinstance(status, Mapping) else {}
        changed = _changed_entries(old, new, self.profiles)
        if self._views is not None and name in self._views:
            view = self._views[name] = dataclasses.replace(self._views[name], report=new)
            if not self._current_stale:
                for key in changed:
                    self.current.update(key, view)
        self._mark(changed)

    def observe_node(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Node event: node churn changes every profile's desired count."""
        name = (body.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            return
        if (event_type == "DELETED") == (name not in self.nodes):
            return  # a Node's own updates (status, labels) change nothing here
        if event_type == "DELETED":
            self.nodes.discard(name)
        else:
            self.nodes.add(name)
        self._views = None
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
            self._views = None
            self._mark(set(self.profiles))

    def observe_pod(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Any pod event: remember which of our profiles it uses (nothing else of it is kept).

        Only profiles being deleted are marked dirty, since only their status and
        finalizer depend on pods.
        """
        meta = body.get("metadata") or {}
        pod_key = f"{meta.get('namespace')}/{meta.get('name')}"
        refs = frozenset() if event_type == "DELETED" else podrefs.profiles_used(body)
        old = self.pod_refs.get(pod_key, frozenset())
        if refs:
            self.pod_refs[pod_key] = refs
        else:
            self.pod_refs.pop(pod_key, None)
        if refs != old:
            self._mark({k for k in refs ^ old if k in self.profiles and self.profiles[k].snap.deleting})

    def pods_using(self, key: str) -> list[str]:
        """Pods (``<namespace>/<name>``, sorted) that use profile ``key`` now."""
        return sorted(pod for pod, refs in self.pod_refs.items() if key in refs)

    async def prime_pods(self) -> None:
        """List every pod once, so a deletion right after start cannot miss a user.

        Raises:
            ApiError: the list failed (the caller retries; nothing is released meanwhile).
        """
        if self.pods_primed:
            return
        for body in await self.api.list_pods():
            self.observe_pod(None, body)
        self.pods_primed = True
        self._mark({k for k, t in self.profiles.items() if t.snap.deleting})

    def mark_all(self) -> None:
        """Recompute every profile's status (a policy changed)."""
        self._mark(set(self.profiles))

    def mark_namespace(self, namespace: str) -> None:
        """Recompute the status of every profile in ``namespace``."""
        self._mark({k for k in self.profiles if k.startswith(f"{namespace}/")})

    def _mark(self, keys: set[str]) -> None:
        if keys:
            self._dirty |= keys
            self._wake.set()

    # --- views -------------------------------------------------------------------------
    def node_views(self) -> list[rollout.NodeView]:
        """One view per existing Node, sorted by name: its best agent pod and its report.

        Kept between calls; rebuilt (O(nodes)) only after a node or agent change.
        """
        views = self._views
        if views is None:
            per_node: dict[str, list[rollout.AgentInfo]] = {}
            for node, info in self.agents.values():
                per_node.setdefault(node, []).append(info)
            self._view_order = sorted(self.nodes)
            views = self._views = {
                n: rollout.NodeView(n, rollout.best_agent(per_node.get(n, [])), self.reports.get(n))
                for n in self._view_order
            }
            self._current_stale = True
        return [views[n] for n in self._view_order]

    def _expected_hash(self, key: str) -> str | None:
        """The hash every node should report for ``key``, or None (not wanted, not renderable)."""
        tracked = self.profiles.get(key)
        if tracked is None or not tracked.snap.wanted:
            return None
        try:
            return self.verdict(tracked.snap).content_hash
        except paths.UnsafeNameError:
            return None

    def _track(self, key: str) -> None:
        """Re-read which nodes have ``key``'s current content (its expected hash may have changed)."""
        views = self.node_views()
        if not self._current_stale:
            self.current.track(key, self._expected_hash(key), views)

    def _refresh_current(self) -> None:
        """Rebuild the whole CurrentIndex after node or agent changes (O(nodes x profiles))."""
        views = self.node_views()
        if self._current_stale:
            self._current_stale = False
            for key in list(self.current.tracked()):
                if key not in self.profiles:
                    self.current.forget(key)
            for key in self.profiles:
                self.current.track(key, self._expected_hash(key), views)

    def _urgent(self, key: str) -> bool:
        """Whether ``key``'s status must be written now, whatever the interval: its status does
        not show the current generation yet, or every node has just got the current content."""
        tracked = self.profiles.get(key)
        if tracked is None:
            return False
        written = tracked.status
        if written.get("observedGeneration") != tracked.snap.generation:
            return True
        ready_now = (
            self.current.expected(key) is not None
            and bool(self.nodes)
            and self.current.count(key) == len(self.nodes)
        )
        return ready_now and written.get("phase") != c.PHASE_INSTALLED

    def verdict(self, snap: ProfileSnapshot) -> rollout.Verdict:
        """Render ``snap`` as the agents will and say what hash to expect, or why none."""
        try:
            rendered = self.renderer.render(snap, self._snaps)
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
        views = self.node_views()
        verdict = self.verdict(snap)  # renders once per status computation
        fresh = not self._current_stale and self.current.expected(key) == verdict.content_hash
        known = self.current.nodes(key) if fresh and snap.wanted else frozenset()
        status = rollout.profile_status(
            namespace=snap.namespace,
            name=snap.name,
            generation=snap.generation,
            enabled=snap.enabled,
            deleting=snap.deleting,
            verdict=verdict,
            nodes=views,
            previous=tracked.status,
            now=now_rfc3339(),
            localhost_profile=paths.localhost_profile(snap.namespace, snap.name),
            overdue=self._overdue(key, verdict.content_hash if snap.wanted else None, views, known),
            pods=self.pods_using(key) if snap.deleting else (),
            removal_allowed=snap.deleting and self.pods_primed and not self.pods_using(key),
            known_current=known,
        )
        self._policy_check(tracked, status)
        return status

    def _policy_check(self, tracked: _Tracked, status: dict[str, Any]) -> None:
        """Re-check the profile against the SeccompPolicies: mark it, never delete it.

        Adds the ``PolicyViolation`` condition (its ``lastTransitionTime`` kept while its
        status does not change) and the policy findings to ``status``.
        """
        ns = tracked.snap.namespace

        def lookup(name: str) -> Mapping[str, Any] | None:
            base = self.profiles.get(f"{ns}/{name}")
            return base.snap.spec if base is not None else None

        found = self.policies.check(tracked.snap.spec, ns, lookup_base=lookup)
        cond = policy.condition(found, generation=tracked.snap.generation, now=now_rfc3339())
        for prev in tracked.status.get("conditions") or []:
            if prev.get("type") == cond["type"] and prev.get("status") == cond["status"]:
                cond["lastTransitionTime"] = prev.get("lastTransitionTime", cond["lastTransitionTime"])
        status["conditions"].append(cond)
        status["findings"] = [*status["findings"], *(f.as_dict() for f in found)][:20]

    def _overdue(
        self,
        key: str,
        expected: str | None,
        views: list[rollout.NodeView],
        known_current: Collection[str] = (),
    ) -> dict[str, float]:
        """Nodes whose ready agent has lagged behind the current content for longer than the timeout.

        Tracks, per (profile, node), since when the node has not had the expected hash,
        and schedules a recheck of ``key`` for when the earliest timeout expires.  Nodes in
        ``known_current`` have the expected hash (no lag).
        """
        now = self.clock()
        timeout = self.cfg.report_timeout
        late: dict[str, float] = {}
        due: float | None = None
        for view in views:
            lag_key = (key, view.name)
            lagging = (
                expected is not None
                and view.name not in known_current
                and view.agent is not None
                and view.agent.ready
            )
            if lagging:
                st = rollout.node_state(key, expected, view)
                lagging = st.state in (c.NODE_PENDING, c.NODE_OUTDATED)
            if not lagging or expected is None:
                self._lagging.pop(lag_key, None)
                continue
            since_hash, since = self._lagging.get(lag_key, (expected, now))
            if since_hash != expected:
                since = now
            self._lagging[lag_key] = (expected, since)
            if now - since >= timeout:
                late[view.name] = timeout
            else:
                due = since + timeout if due is None else min(due, since + timeout)
        if due is None:
            self._recheck.pop(key, None)
        else:
            self._recheck[key] = due
        return late

    def deletion_blockers(self, key: str) -> list[str]:
        """Nodes that still hold the file of ``key`` (see :func:`rollout.deletion_blockers`)."""
        return rollout.deletion_blockers(key, self.node_views())

    # --- the loop ---------------------------------------------------------------------
    async def prime(self) -> None:
        """Load Nodes, agent pods and node reports with full lists before the first write.

        Watch events arrive per resource in no particular order; without this, a
        restarted controller could briefly publish "1/3" over a correct "3/3" because
        it saw a profile before the node reports.  Retries until the lists succeed.
        """
        delay = 0.5
        while True:
            try:
                nodes = await self.api.list_nodes()
                pods = await self.api.list_agent_pods()
                reports = await self.api.list_node_statuses()
            except ApiError as e:
                logger.warning("initial lists failed (retrying in %.1fs): %s", delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            for body in nodes:
                self.observe_node(None, body)
            for body in pods:
                self.observe_agent_pod(None, body)
            for body in reports:
                self.observe_report(None, body)
            return

    async def run(self) -> None:
        """Prime the caches, then write dirty statuses, coalesced per profile; never returns."""
        await self.prime()
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
        self._refresh_current()
        now = self.clock()
        due_in: float | None = None
        for key, at in list(self._recheck.items()):
            if at <= now:
                del self._recheck[key]
                self._dirty.add(key)
        for key in sorted(self._dirty):
            urgent = self._urgent(key)
            spacing = self.cfg.status_interval * min(2 ** self._backoff.get(key, 0), PROGRESS_BACKOFF_MAX)
            wait = max(self._last_write.get(key, -1e9) + spacing, self._retry_at.get(key, -1e9)) - now
            if wait > 0 and (not urgent or self._retry_at.get(key, -1e9) > now):
                due_in = wait if due_in is None else min(due_in, wait)
                continue
            self._dirty.discard(key)
            if await self._write_status(key):
                self._backoff[key] = 0 if urgent else min(self._backoff.get(key, 0) + 1, 30)
        if self._recheck:  # a lagging node's report timeout expires then
            soonest = min(self._recheck.values()) - self.clock()
            due_in = soonest if due_in is None else min(due_in, soonest)
        return due_in

    async def _write_status(self, key: str) -> bool:
        """Compute ``key``'s status and write it if it changed; True when it was written."""
        tracked = self.profiles.get(key)
        if tracked is None:
            return False
        try:
            status = self.compute_status(key)
        except paths.UnsafeNameError as e:
            logger.error("profile %s has an unusable name: %s", key, e, extra={"profile": key})
            return False
        if status is None:
            return False
        await self._events(key, tracked, status)
        self._observe_metrics(key, tracked, status)
        if _same(status, tracked.status):
            return False
        snap = tracked.snap
        try:
            await self.api.patch_profile_status(snap.namespace, snap.name, status)
        except ApiError as e:
            self.metrics.write_errors.labels(reason=str(e.status or "Unreachable")).inc()
            if e.status == 404:
                return False
            logger.warning("status write for %s failed (will retry): %s", key, e, extra={"profile": key})
            self._retry_at[key] = self.clock() + self.cfg.status_interval  # no busy loop
            self._mark({key})
            return False
        self._last_write[key] = self.clock()
        self._retry_at.pop(key, None)
        tracked.status = {k: v for k, v in status.items() if v is not None}
        return True

    async def _events(self, key: str, tracked: _Tracked, status: Mapping[str, Any]) -> None:
        """Post an event when the invalid verdict or a node failure is new (once each)."""
        phase = status.get("phase")
        if phase == c.PHASE_INVALID:
            msg = "; ".join(_findings_text(status)[:5])
            await self._event_once(key, "invalid", msg, tracked, c.EVENT_INVALID, "Warning")
            return  # the nodes' errors say the same thing; one event is enough
        if status.get("contentHash") is None:
            return  # base profile missing: the Ready condition says so
        for node in status.get("notReadyNodes") or []:
            if node.get("state") == c.NODE_ERROR:
                msg = f"node {node.get('name')}: {node.get('message')}"
                await self._event_once(
                    key, f"node:{node.get('name')}", msg, tracked, c.EVENT_NODE_ERROR, "Warning"
                )
        if phase == c.PHASE_TERMINATING and status.get("referencingPodCount"):
            pods = list(status.get("referencingPods") or [])
            count = int(status.get("referencingPodCount") or 0)
            more = f" and {count - len(pods)} more" if count > len(pods) else ""
            msg = f"deletion waits for {count} pod(s) using the profile: {', '.join(pods)}{more}"
            await self._event_once(key, "pods", msg, tracked, c.EVENT_DELETION_BLOCKED, "Warning")
        if phase == c.PHASE_INSTALLED:
            msg = f"installed on {status.get('ready')} nodes (content {str(status.get('contentHash'))[:12]})"
            await self._event_once(key, "ready", msg, tracked, c.EVENT_READY, "Normal")

    def _observe_metrics(self, key: str, tracked: _Tracked, status: Mapping[str, Any]) -> None:
        """Nodes by state for this profile, and the rollout time once it first becomes Installed."""
        self.metrics.set_profile(key, status)
        seen = self._spec_seen.get(key)
        already = (tracked.status.get("phase"), tracked.status.get("observedGeneration")) == (
            c.PHASE_INSTALLED,
            tracked.snap.generation,
        )
        if (
            seen is not None
            and seen[1] != float("inf")
            and status.get("phase") == c.PHASE_INSTALLED
            and seen[0] == tracked.snap.generation
            and not already
        ):
            self.metrics.rollout_seconds.observe(self.clock() - seen[1])
            self._spec_seen[key] = (seen[0], float("inf"))  # observed once per generation

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


def _changed_entries(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, profiles: Mapping[str, Any]
) -> set[str]:
    """Profile keys whose standing on one node may differ between two of its reports.

    Only entries that differ, unless the report appears, disappears or its agent-level
    ``state``/``message`` changes: that concerns every profile (``profiles``' keys too).
    """
    old_p = (old or {}).get("profiles") or {}
    new_p = (new or {}).get("profiles") or {}
    changed = {k for k in old_p.keys() | new_p.keys() if old_p.get(k) != new_p.get(k)}
    if (
        old is None
        or new is None
        or old.get("state") != new.get("state")
        or old.get("message") != new.get("message")
    ):
        changed |= set(profiles)
    return changed


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
