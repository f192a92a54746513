"""Kopf handlers of the node agent: a thin layer over :class:`agent.Agent`.

The agent only watches SeccompProfiles with ``on.event`` handlers, which keep no
state on the objects: no finalizers, annotations or status are ever written to a
profile by an agent, so N agents never fight over one object.  Its only write is
its own node's SeccompNodeStatus (from :class:`agent.Agent`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from . import constants as c
from .agent import Agent, AgentConfig
from .kube import KubeApi
from .metrics import serve
from .roles import RoleMemo, base_settings, stop_task
from .roles import login as role_login

registry = kopf.OperatorRegistry()


@kopf.on.login(registry=registry)
def login(memo: RoleMemo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Connect to the endpoint in the memo (or in-cluster / kubeconfig)."""
    return role_login(memo, **kwargs)


@kopf.on.startup(registry=registry)
async def start(settings: kopf.OperatorSettings, memo: RoleMemo, **_: Any) -> None:
    """Configure Kopf for an agent and start the reconcile loop."""
    base_settings(settings)
    settings.posting.enabled = False  # agents post no events; the controller does
    cfg: AgentConfig = memo.config
    memo.api = KubeApi(memo.endpoint)
    memo.core = Agent(cfg, memo.api)
    memo.task = asyncio.create_task(memo.core.run(), name=f"agent-{cfg.node_name}")
    port = memo.extras.get("metrics_port")
    if port is not None:
        agent = memo.core
        memo.extras["metrics_runner"] = await serve(
            agent.metrics.registry, agent.synced.is_set, port=int(port)
        )


@kopf.on.cleanup(registry=registry)
async def stop(memo: RoleMemo, **_: Any) -> None:
    """Stop the loop and the metrics endpoint; files stay on disk (the kubelet needs them)."""
    await stop_task(memo)


@kopf.on.event(c.GROUP, c.VERSION, c.PROFILE_PLURAL, registry=registry)
async def profile_event(type: str | None, body: kopf.Body, memo: RoleMemo, **_: Any) -> None:
    """Every profile event wakes the loop; the loop does the work."""
    memo.core.observe(type, body)
