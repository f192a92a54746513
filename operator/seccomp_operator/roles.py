"""What both roles share to run under Kopf: the memo, the login, the operator call.

Each role registers its handlers on its own :class:`kopf.OperatorRegistry`, so the
controller and several agents can run in one process (the embedded demo and the
integration tests) without seeing each other's handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from .kube import Endpoint, KubeApi, connection_info


@dataclass
class RoleMemo:
    """Runtime objects of one role, passed to every handler as ``memo``.

    Kopf shallow-copies the memo per watched object; the attributes set here (and
    the objects they point to) are shared by all copies.

    Attributes:
        endpoint: where the API is (``server=None``: in-cluster or kubeconfig).
        config: the role's configuration (``AgentConfig`` or ``ControllerConfig``).
        api: our own API seam, created at start-up.
        core: the role's logic object (``Agent`` or ``Controller``), created at start-up.
        task: the role's background loop.
    """

    endpoint: Endpoint
    config: Any
    api: KubeApi | None = None
    core: Any = None
    task: asyncio.Task[None] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def login(memo: RoleMemo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf login: the explicit endpoint if any, else the service account, else kubeconfig.

    The same credentials :class:`kube.KubeApi` uses for the role's own calls.
    """
    return connection_info(memo.endpoint, **kwargs)


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff-base storage that keeps nothing, for a role whose only changing handler is ``on.delete``.

    Kopf stores the "last handled" essence of every object it has changing handlers
    for (by default in an annotation) to tell creations and updates apart; the
    controller has no create or update handler, so each spec change would cost one
    more PATCH of the profile, which every node's watch then receives.  With an empty
    essence on both sides every change is a no-op to Kopf; deletions are still
    detected from ``metadata.deletionTimestamp``.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        """The essence compared by Kopf: always empty."""
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """The stored essence: always the same empty one."""
        return cast(kopf.BodyEssence, {})

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Nothing is stored (no PATCH)."""


def base_settings(settings: kopf.OperatorSettings) -> None:
    """Settings both roles share: quiet posting, bounded watch and API timeouts."""
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.scanning.disabled = True  # we name our resources; no CRD scanning needed


async def stop_task(memo: RoleMemo) -> None:
    """Stop the metrics endpoint, cancel the role's loop and close the API client (Kopf cleanup)."""
    runner = memo.extras.pop("metrics_runner", None)
    if runner is not None:
        await runner.cleanup()
    if memo.task is not None:
        memo.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await memo.task
        memo.task = None
    if memo.api is not None:
        await memo.api.aclose()
        memo.api = None


async def run(
    registry: kopf.OperatorRegistry,
    memo: RoleMemo,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    liveness_endpoint: str | None = None,
) -> None:
    """Run one role until ``stop_flag`` is set (or forever)."""
    await kopf.operator(
        registry=registry,
        memo=memo,
        standalone=True,
        clusterwide=True,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        liveness_endpoint=liveness_endpoint,
    )


def task_logger(role: str) -> logging.Logger:
    """The logger of a role's own messages (Kopf logs per object itself)."""
    return logging.getLogger(f"seccomp_operator.{role}")
