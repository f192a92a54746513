"""Rollout aggregation: per-node reports become one profile status.

Pure logic (no kopf, no network).  Inputs are plain snapshots the controller keeps:
the Node names, the agent pods' readiness per node, each node's
``SeccompNodeStatus.status`` report, and the controller's own verdict on the spec
(the content hash it expects, or why the spec is invalid).  Output is the complete
``status`` of a SeccompProfile, bounded in size whatever the number of nodes: counts,
plus at most ``NOT_READY_NODES_CAP`` nodes that are not ready, with reasons.

Conditions follow the Kubernetes API conventions (``type``, ``status`` as the
strings ``"True"``/``"False"``/``"Unknown"``, ``reason`` in CamelCase, ``message``,
``lastTransitionTime`` changed only when ``status`` changes, ``observedGeneration``),
so ``kubectl wait --for=condition=Ready`` and GitOps health checks work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import constants as c
from .findings import Finding, summary

# --- inputs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """The node agent's pod on one node, as the controller sees it.

    Attributes:
        ready: the pod's ``Ready`` condition is ``"True"``.
        reason: why it is not ready (``CrashLoopBackOff``, ``ContainerCreating``,
            ``Pending``...), empty when ready.
    """

    ready: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NodeView:
    """One desired node: its name, its agent (None: no agent pod on it) and its report.

    ``report`` is the ``status`` object of the node's SeccompNodeStatus, or None
    when the agent has never reported.
    """

    name: str
    agent: AgentInfo | None
    report: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the controller concluded from the spec alone.

    Attributes:
        content_hash: sha256 hex of the rendered file; None when it cannot render.
        problem_reason: ``InvalidSpec`` or ``BaseProfileMissing`` when it cannot render.
        findings: all findings (errors when invalid; warnings otherwise).
    """

    content_hash: str | None
    problem_reason: str | None = None
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeState:
    """Where one node stands for one profile (``state`` is one of the NODE_* constants)."""

    name: str
    state: str
    reason: str = ""
    message: str = ""
    since: str = ""


@dataclass(slots=True)
class Tally:
    """Counts of nodes by state for one profile."""

    desired: int = 0
    installed: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0
    removed: int = 0
    not_ready: list[NodeState] = field(default_factory=list)


# --- agent pods -----------------------------------------------------------------------


def agent_from_pod(pod: Mapping[str, Any]) -> tuple[str, AgentInfo] | None:
    """Read an agent pod: ``(node name, AgentInfo)``, or None if it is not bound to a node.

    Ready means the pod condition ``Ready`` is ``"True"`` and the pod is not being
    deleted.  Otherwise the reason is the first container's waiting or terminated
    reason (``CrashLoopBackOff``, ``ImagePullBackOff``...), else the pod phase.
    """
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    node = spec.get("nodeName")
    if not isinstance(node, str) or not node:
        return None
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return node, AgentInfo(ready=False, reason="Terminating")
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready" and cond.get("status") == "True":
            return node, AgentInfo(ready=True)
    for cs in status.get("containerStatuses") or []:
        state = (cs or {}).get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason:
                return node, AgentInfo(ready=False, reason=str(reason))
    return node, AgentInfo(ready=False, reason=str(status.get("phase") or "NotReady"))


def best_agent(candidates: Iterable[AgentInfo]) -> AgentInfo | None:
    """Of several agent pods on one node (a rolling update), the ready one wins."""
    best: AgentInfo | None = None
    for info in candidates:
        if info.ready:
            return info
        best = best or info
    return best


# --- per node ------------------------------------------------------------------------------


def node_state(
    key: str,
    expected_hash: str | None,
    node: NodeView,
    *,
    wanted: bool = True,
    overdue: float | None = None,
) -> NodeState:
    """Where ``node`` stands for the profile ``key`` (``<namespace>/<name>``).

    Args:
        expected_hash: the content hash the controller rendered; None if it cannot render.
        wanted: False when the profile is disabled or being deleted, so that the
            file should be absent: the node is done when it reports ``Removed`` or
            nothing for ``key``.
        overdue: the report timeout in seconds when this node's ready agent has had
            longer than that to report the current content, else None: a node that
            would be ``Pending`` or ``Outdated`` is then ``Unknown`` (reason
            ``ReportTimeout``), so the rollout is not shown as still moving.

    A node whose agent is absent or not ready is ``Unknown`` whatever its last report
    says: nobody on that node can vouch for the file right now.
    """
    if node.agent is None:
        return NodeState(node.name, c.NODE_UNKNOWN, "NoAgent", "no node agent scheduled on this node")
    if not node.agent.ready:
        why = node.agent.reason or "NotReady"
        return NodeState(node.name, c.NODE_UNKNOWN, "AgentNotReady", f"node agent not ready ({why})")
    report = node.report or {}
    if report.get("state") == c.NODE_ERROR:
        return NodeState(node.name, c.NODE_ERROR, "AgentError", str(report.get("message") or "agent error"))
    entry = (report.get("profiles") or {}).get(key) if node.report is not None else None
    if not isinstance(entry, Mapping):
        entry = None
    since = str(entry.get("lastTransitionTime") or "") if entry else ""
    message = str(entry.get("message") or "") if entry else ""
    if not wanted:
        if entry is None or entry.get("state") == c.NODE_REMOVED:
            return NodeState(node.name, c.NODE_REMOVED, since=since)
        return NodeState(node.name, c.NODE_PENDING, "RemovalPending", "file not removed yet", since)
    current = (
        entry is not None
        and entry.get("state") == c.NODE_INSTALLED
        and expected_hash is not None
        and entry.get("contentHash") == expected_hash
    )
    if overdue is not None and not current and (entry is None or entry.get("state") != c.NODE_ERROR):
        return NodeState(
            node.name,
            c.NODE_UNKNOWN,
            c.REASON_REPORT_TIMEOUT,
            f"agent has not reported within {overdue:g}s",
            since,
        )
    if node.report is None:
        return NodeState(node.name, c.NODE_PENDING, "NoReport", "node agent has not reported yet")
    if entry is None:
        return NodeState(node.name, c.NODE_PENDING, "NotInstalled", "waiting for the node agent")
    state = entry.get("state")
    on_disk = entry.get("contentHash")
    if state == c.NODE_ERROR:
        return NodeState(node.name, c.NODE_ERROR, "InstallFailed", message or "install failed", since)
    if state == c.NODE_INSTALLED and expected_hash is not None and on_disk == expected_hash:
        return NodeState(node.name, c.NODE_INSTALLED, since=since)
    if state == c.NODE_INSTALLED:
        short = str(on_disk or "")[:12]
        return NodeState(
            node.name, c.NODE_OUTDATED, "OldContent", f"node has content {short}, not the current spec", since
        )
    return NodeState(
        node.name, c.NODE_PENDING, "NotInstalled", message or "waiting for the node agent", since
    )


def tally(
    key: str,
    expected_hash: str | None,
    nodes: Sequence[NodeView],
    *,
    wanted: bool = True,
    cap: int = 0,
    overdue: Mapping[str, float] | None = None,
    known_current: Collection[str] = (),
) -> Tally:
    """Count nodes by state and keep the first ``cap`` not-ready nodes (sorted by name).

    ``overdue`` maps node names to the report timeout they exceeded (see :func:`node_state`).
    ``known_current`` names nodes already known to be ``Installed`` with ``expected_hash``
    (a :class:`CurrentIndex`, only when ``wanted``): they are counted without a second look.
    """
    t = Tally(desired=len(nodes))
    late = overdue or {}
    known = known_current if wanted else ()
    for node in sorted(nodes, key=lambda n: n.name):
        if node.name in known:
            t.installed += 1
            continue
        st = node_state(key, expected_hash, node, wanted=wanted, overdue=late.get(node.name))
        if st.state in (c.NODE_INSTALLED, c.NODE_REMOVED):
            if st.state == c.NODE_INSTALLED:
                t.installed += 1
            else:
                t.removed += 1
            continue
        if st.state == c.NODE_ERROR:
            t.failed += 1
        elif st.state == c.NODE_UNKNOWN:
            t.unknown += 1
        else:
            t.pending += 1
        if len(t.not_ready) < cap:
            t.not_ready.append(st)
    return t


# --- the whole status -----------------------------------------------------------------------


def _condition(
    type_: str,
    status: bool,
    reason: str,
    message: str,
    previous: Mapping[str, Mapping[str, Any]],
    generation: int | None,
    now: str,
) -> dict[str, Any]:
    value = "True" if status else "False"
    prev = previous.get(type_) or {}
    since = prev.get("lastTransitionTime") if prev.get("status") == value else None
    cond: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[: c.MESSAGE_CAP * 2],
        "lastTransitionTime": since or now,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def _not_ready_text(t: Tally, limit: int = 3) -> str:
    parts = [f"{n.name}: {n.message or n.reason or n.state}" for n in t.not_ready[:limit]]
    rest = (t.failed + t.pending + t.unknown) - len(parts)
    if rest > 0:
        parts.append(f"and {rest} more")
    return "; ".join(parts)


def profile_status(
    *,
    namespace: str,
    name: str,
    generation: int | None,
    enabled: bool,
    deleting: bool,
    verdict: Verdict,
    nodes: Sequence[NodeView],
    previous: Mapping[str, Any] | None,
    now: str,
    localhost_profile: str,
    cap: int = c.NOT_READY_NODES_CAP,
    overdue: Mapping[str, float] | None = None,
    pods: Sequence[str] = (),
    pods_cap: int = c.REFERENCING_PODS_CAP,
    removal_allowed: bool = False,
    known_current: Collection[str] = (),
) -> dict[str, Any]:
    """The complete ``status`` of one SeccompProfile.

    Shape (all keys always present, so a merge patch replaces stale values)::

        {"observedGeneration": int|None, "phase": str, "localhostProfile": str,
         "contentHash": str|None, "ready": "I/D", "desiredNodes": D, "installedNodes": I,
         "failedNodes": F, "pendingNodes": P, "notReadyNodes": [{name, state, reason,
         message, since}] (at most ``cap``), "notReadyNodesOmitted": int,
         "findings": [{severity, path, message, hint}], "conditions": [Ready,
         Progressing, Degraded, Invalid], "referencingPods": ["<ns>/<pod>"] (at
         most ``pods_cap``), "referencingPodCount": int, "removalAllowed": bool}

    ``pods`` are the pods that still use the profile while it is being deleted
    (sorted ``<namespace>/<name>``); deletion waits for them, and the Ready message
    names them.  ``removal_allowed`` (only meaningful while deleting): no pod uses
    the profile any more, so agents may remove the file; until then they keep it.
    ``overdue``: nodes whose ready agent missed the report timeout (name -> timeout
    in seconds), shown as ``Unknown``.  ``known_current``: see :func:`tally` (the same
    result, fewer lookups).

    ``now`` is an RFC 3339 timestamp used for conditions whose status changes;
    unchanged conditions keep their previous ``lastTransitionTime``.
    """
    key = f"{namespace}/{name}"
    prev_conds: dict[str, Mapping[str, Any]] = {
        str(cd.get("type")): cd
        for cd in ((previous or {}).get("conditions") or [])
        if isinstance(cd, Mapping)
    }
    wanted = enabled and not deleting and verdict.content_hash is not None
    expected = verdict.content_hash
    t = tally(
        key,
        expected,
        nodes,
        wanted=enabled and not deleting,
        cap=cap,
        overdue=overdue,
        known_current=known_current,
    )
    done = t.installed if (enabled and not deleting) else t.removed
    invalid = verdict.problem_reason == c.REASON_INVALID_SPEC
    base_missing = verdict.problem_reason == c.REASON_BASE_MISSING
    ready = wanted and t.desired > 0 and t.installed == t.desired
    # Nodes whose agent is working on it (pending/outdated with a ready agent).
    working = wanted and t.pending > 0
    progress_text = f"{done}/{t.desired} nodes"

    if deleting:
        phase = c.PHASE_TERMINATING
        ready_reason, ready_msg = c.REASON_TERMINATING, f"removing from nodes: {t.removed}/{t.desired} done"
        if pods:
            shown = ", ".join(pods[:3]) + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")
            ready_msg = f"deletion waits for {len(pods)} pod(s) using the profile: {shown}"
    elif invalid:
        phase = c.PHASE_INVALID
        ready_reason, ready_msg = c.REASON_INVALID_SPEC, summary(verdict.findings)
    elif not enabled:
        phase = c.PHASE_DISABLED
        ready_reason, ready_msg = (
            c.REASON_DISABLED,
            f"state is Disabled; removed from {t.removed}/{t.desired} nodes",
        )
    elif base_missing:
        phase = c.PHASE_PENDING
        ready_reason, ready_msg = c.REASON_BASE_MISSING, summary(verdict.findings)
    elif t.desired == 0:
        phase = c.PHASE_PENDING
        ready_reason, ready_msg = c.REASON_NO_NODES, "no nodes in the cluster"
    elif ready:
        phase = c.PHASE_INSTALLED
        ready_reason, ready_msg = c.REASON_ALL_INSTALLED, f"{t.installed}/{t.desired} nodes installed"
    else:
        phase = c.PHASE_DEGRADED if t.failed else (c.PHASE_PROGRESSING if working else c.PHASE_PENDING)
        ready_reason = c.REASON_NODES_NOT_INSTALLED
        ready_msg = f"{t.installed}/{t.desired} nodes installed; {_not_ready_text(t)}"

    conditions = [
        _condition(c.COND_READY, ready, ready_reason, ready_msg, prev_conds, generation, now),
        _condition(
            c.COND_PROGRESSING,
            working,
            c.REASON_ROLLING_OUT if working else c.REASON_ROLLOUT_COMPLETE,
            f"{t.installed}/{t.desired} nodes have the current content" if working else progress_text,
            prev_conds,
            generation,
            now,
        ),
        _condition(
            c.COND_DEGRADED,
            t.failed > 0,
            c.REASON_NODE_ERRORS if t.failed else c.REASON_NO_ERRORS,
            _not_ready_text(
                Tally(failed=t.failed, not_ready=[n for n in t.not_ready if n.state == c.NODE_ERROR])
            )
            if t.failed
            else "no node reports an error",
            prev_conds,
            generation,
            now,
        ),
        _condition(
            c.COND_INVALID,
            invalid,
            c.REASON_INVALID_SPEC if invalid else c.REASON_VALID_SPEC,
            summary(verdict.findings) if invalid else "spec is valid",
            prev_conds,
            generation,
            now,
        ),
    ]
    omitted = (t.failed + t.pending + t.unknown) - len(t.not_ready)
    return {
        "observedGeneration": generation,
        "phase": phase,
        "localhostProfile": localhost_profile,
        "contentHash": expected,
        "ready": f"{done}/{t.desired}",
        "desiredNodes": t.desired,
        "installedNodes": t.installed,
        "failedNodes": t.failed,
        "pendingNodes": t.pending + t.unknown,
        "notReadyNodes": [
            {
                "name": n.name,
                "state": n.state,
                "reason": n.reason,
                "message": n.message[: c.MESSAGE_CAP],
                "since": n.since,
            }
            for n in t.not_ready
        ],
        "notReadyNodesOmitted": max(omitted, 0),
        "findings": [f.as_dict() for f in verdict.findings[:20]],
        "conditions": conditions,
        "referencingPods": list(pods[:pods_cap]),
        "referencingPodCount": len(pods),
        "removalAllowed": bool(deleting and removal_allowed),
    }


def deletion_blockers(key: str, nodes: Sequence[NodeView]) -> list[str]:
    """Nodes that must still remove the file of ``key`` before the finalizer goes.

    Only nodes with a ready agent whose report still lists the profile in a state
    other than ``Removed`` block.  Nodes without a ready agent never block: their
    agent garbage-collects files of deleted profiles when it starts (the directory
    is reconciled against the live list), and a deleted Node is not in ``nodes``.
    """
    blockers = []
    for node in nodes:
        if node.agent is None or not node.agent.ready or node.report is None:
            continue
        entry = (node.report.get("profiles") or {}).get(key)
        if isinstance(entry, Mapping) and entry.get("state") != c.NODE_REMOVED:
            blockers.append(node.name)
    return sorted(blockers)


# --- incremental: which nodes have the current content ----------------------------------------


class CurrentIndex:
    """Per profile, the nodes that have its current content (``node_state`` is ``Installed``).

    The controller asks, for every node report that arrives, whether a profile has
    just become Ready on every node; recomputing that over all nodes per report would
    cost O(nodes) per report, O(nodes²) per rollout.  This index is updated one
    (profile, node) pair at a time instead: O(changed entries) per report, and
    O(nodes) only when a profile's expected content changes or the set of nodes or
    agents changes (:meth:`track`).

    Only profiles with an expected hash (enabled, not deleting, renderable) are
    tracked; :meth:`count` is 0 for the others.
    """

    def __init__(self) -> None:
        self._expected: dict[str, str] = {}
        self._have: dict[str, set[str]] = {}

    def track(self, key: str, expected: str | None, nodes: Iterable[NodeView]) -> None:
        """(Re)build ``key``'s set against ``expected`` over ``nodes``; None stops tracking it."""
        if expected is None:
            self.forget(key)
            return
        self._expected[key] = expected
        self._have[key] = {n.name for n in nodes if _is_current(key, expected, n)}

    def update(self, key: str, node: NodeView) -> None:
        """Re-check one node of one tracked profile (its report or agent changed)."""
        expected = self._expected.get(key)
        if expected is None:
            return
        if _is_current(key, expected, node):
            self._have[key].add(node.name)
        else:
            self._have[key].discard(node.name)

    def forget(self, key: str) -> None:
        """Stop tracking ``key``."""
        self._expected.pop(key, None)
        self._have.pop(key, None)

    def expected(self, key: str) -> str | None:
        """The hash ``key`` is tracked against, or None."""
        return self._expected.get(key)

    def tracked(self) -> list[str]:
        """The tracked profile keys."""
        return list(self._expected)

    def count(self, key: str) -> int:
        """How many nodes have the current content of ``key``."""
        return len(self._have.get(key, ()))

    def has(self, key: str, node: str) -> bool:
        """Whether ``node`` has the current content of ``key``."""
        return node in self._have.get(key, ())

    def nodes(self, key: str) -> Collection[str]:
        """The nodes that have the current content of ``key`` (a live view: do not keep it)."""
        return self._have.get(key, frozenset())


def _is_current(key: str, expected: str, node: NodeView) -> bool:
    return node_state(key, expected, node).state == c.NODE_INSTALLED
