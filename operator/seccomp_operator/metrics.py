"""Prometheus metrics of both roles, and the HTTP endpoint that serves them.

Each role object owns its own :class:`prometheus_client.CollectorRegistry`, so the
controller and several agents can run in one process (tests, demo, benchmark)
without sharing series.  :func:`serve` exposes ``/metrics`` (text exposition
format), ``/healthz`` (liveness: the event loop answers) and ``/readyz``
(readiness: the role's own predicate, e.g. the agent's initial sync is done).

Series (units in the names, as Prometheus recommends):

agent (label ``node`` on every series)
  ``seccomp_agent_profiles{node,state}``             gauge, profiles by state on this node
  ``seccomp_agent_write_errors_total{node,reason}``  counter, failed writes/removals by reason
  ``seccomp_agent_write_seconds{node}``              histogram, atomic write + read-back latency
controller
  ``seccomp_profile_nodes{namespace,profile,state}`` gauge, nodes by state per profile
                                                     (installed, failed, pending, desired)
  ``seccomp_rollout_seconds``                        histogram, spec change seen -> Ready
  ``seccomp_status_write_errors_total{reason}``      counter, failed status writes by HTTP status
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import constants as c

#: Buckets for the rollout time (seconds): sub-second on a quiet cluster, minutes at scale.
ROLLOUT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
#: Buckets for one file write (seconds): fsyncs take micro- to milliseconds.
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
#: Per-node states the agent counts (every state is always exported, zero when none).
AGENT_STATES = (c.NODE_INSTALLED, c.NODE_ERROR, c.NODE_REMOVED)
#: Per-profile node counts the controller exports, from the status fields of the same names.
PROFILE_NODE_FIELDS = {
    "desired": "desiredNodes",
    "installed": "installedNodes",
    "failed": "failedNodes",
    "pending": "pendingNodes",
}


class AgentMetrics:
    """The agent's series for one node (see the module docstring)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        self.profiles = Gauge(
            "seccomp_agent_profiles",
            "Profiles on this node by state",
            ["node", "state"],
            registry=self.registry,
        )
        self.write_errors = Counter(
            "seccomp_agent_write_errors",
            "Failed profile writes or removals on this node, by reason",
            ["node", "reason"],
            registry=self.registry,
        )
        self.write_seconds = Histogram(
            "seccomp_agent_write_seconds",
            "Atomic write plus read-back of one profile file",
            ["node"],
            buckets=WRITE_BUCKETS,
            registry=self.registry,
        )
        for state in AGENT_STATES:
            self.profiles.labels(node=node, state=state).set(0)

    def set_states(self, states: Mapping[str, int]) -> None:
        """Set the per-state gauge; ``states`` maps NODE_* states to counts (missing: 0)."""
        for state in AGENT_STATES:
            self.profiles.labels(node=self.node, state=state).set(states.get(state, 0))

    def write_error(self, reason: str) -> None:
        """Count one failed write or removal (``reason`` is a NodeFSError reason token)."""
        self.write_errors.labels(node=self.node, reason=reason).inc()

    def observe_write(self, seconds: float) -> None:
        """Record the latency of one write plus read-back."""
        self.write_seconds.labels(node=self.node).observe(seconds)


class ControllerMetrics:
    """The controller's series (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.profile_nodes = Gauge(
            "seccomp_profile_nodes",
            "Nodes by state for one profile",
            ["namespace", "profile", "state"],
            registry=self.registry,
        )
        self.rollout_seconds = Histogram(
            "seccomp_rollout_seconds",
            "Time from a spec change seen by the controller to the profile being Ready",
            buckets=ROLLOUT_BUCKETS,
            registry=self.registry,
        )
        self.write_errors = Counter(
            "seccomp_status_write_errors",
            "Failed profile status writes, by HTTP status",
            ["reason"],
            registry=self.registry,
        )

    def set_profile(self, key: str, status: Mapping[str, Any]) -> None:
        """Export the node counts of one profile's computed ``status``."""
        namespace, _, name = key.partition("/")
        for state, field in PROFILE_NODE_FIELDS.items():
            value = status.get(field)
            self.profile_nodes.labels(namespace=namespace, profile=name, state=state).set(
                float(value) if isinstance(value, int) else 0.0
            )

    def forget_profile(self, key: str) -> None:
        """Drop a deleted profile's series."""
        namespace, _, name = key.partition("/")
        for state in PROFILE_NODE_FIELDS:
            with contextlib.suppress(KeyError):
                self.profile_nodes.remove(namespace, name, state)


def sample(registry: CollectorRegistry, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The current value of one sample (``name`` as exposed, e.g. ``..._total``), or None."""
    return registry.get_sample_value(name, dict(labels or {}))


def make_app(registry: CollectorRegistry, ready: Callable[[], bool]) -> web.Application:
    """An aiohttp application serving ``/metrics``, ``/healthz`` and ``/readyz``."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(
    registry: CollectorRegistry, ready: Callable[[], bool], *, port: int, host: str = "0.0.0.0"
) -> web.AppRunner:
    """Start serving on ``host:port`` in the running loop; return the runner (``await runner.cleanup()``).

    ``port=0`` picks a free port (read it back from ``runner.addresses``).

    Raises:
        OSError: the port cannot be bound.
    """
    runner = web.AppRunner(make_app(registry, ready), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
