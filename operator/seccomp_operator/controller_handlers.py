"""Kopf handlers of the controller: a thin layer over :class:`controller.Controller`.

Watches SeccompProfiles, SeccompNodeStatuses, Nodes and pods (agent pods for
readiness; every pod for the profiles it references, of which only the set of
profile keys is kept); holds the one finalizer per profile
(``seccomp-operator.dev/finalizer``) until no pod uses the profile and every node
with a ready agent has removed the file.  Serves ``/metrics``, ``/healthz`` and
``/readyz`` when ``memo.extras["metrics_port"]`` is set.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from . import constants as c
from . import policy
from .controller import Controller, ControllerConfig
from .kube import ApiError, KubeApi
from .metrics import serve
from .roles import NoDiffBase, RoleMemo, base_settings, stop_task
from .roles import login as role_login

registry = kopf.OperatorRegistry()

AGENT_PODS = {c.AGENT_POD_LABEL: c.AGENT_POD_LABEL_VALUE, c.APP_LABEL: c.APP_LABEL_VALUE}


@kopf.on.login(registry=registry)
def login(memo: RoleMemo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Connect to the endpoint in the memo (or in-cluster / kubeconfig)."""
    return role_login(memo, **kwargs)


@kopf.on.startup(registry=registry)
async def start(settings: kopf.OperatorSettings, memo: RoleMemo, **_: Any) -> None:
    """Configure Kopf for the controller and start the status loop."""
    base_settings(settings)
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()  # no annotation PATCH per spec change
    settings.posting.enabled = False  # our own events come from Controller, with our reasons
    admission.configure_webhooks(settings, **memo.extras.get("webhook", {"mode": "off"}))
    cfg: ControllerConfig = memo.config
    memo.api = KubeApi(memo.endpoint)
    memo.core = Controller(cfg, memo.api)
    memo.task = asyncio.create_task(memo.core.run(), name="controller-status")
    port = memo.extras.get("metrics_port")
    if port is not None:
        memo.extras["metrics_runner"] = await serve(memo.core.metrics.registry, lambda: True, port=int(port))


@kopf.on.cleanup(registry=registry)
async def stop(memo: RoleMemo, **_: Any) -> None:
    """Stop the status loop and the metrics endpoint."""
    await stop_task(memo)


@kopf.on.event(c.GROUP, c.VERSION, c.PROFILE_PLURAL, registry=registry)
async def profile_event(type: str | None, body: kopf.Body, memo: RoleMemo, **_: Any) -> None:
    """A profile changed: its status (and its dependents') will be recomputed."""
    memo.core.observe_profile(type, body)


@kopf.on.event(c.GROUP, c.VERSION, c.NODE_STATUS_PLURAL, registry=registry)
async def report_event(type: str | None, body: kopf.Body, memo: RoleMemo, **_: Any) -> None:
    """A node report changed."""
    memo.core.observe_report(type, body)


@kopf.on.event(c.GROUP, c.VERSION, policy.POLICY_PLURAL, registry=registry)
async def policy_event(type: str | None, body: kopf.Body, memo: RoleMemo, **_: Any) -> None:
    """A SeccompPolicy changed: every profile is re-checked (marked, never deleted)."""
    if memo.core.policies.observe_policy(type, body):
        memo.core.mark_all()


@kopf.on.event("", "v1", "nodes", registry=registry)
async def node_event(type: str | None, body: kopf.Body, name: str, memo: RoleMemo, **_: Any) -> None:
    """A Node came or went; a deleted node never blocks anything."""
    memo.core.observe_node(type, body)
    if type == "DELETED":
        await memo.core.forget_node(name)


@kopf.on.event("", "v1", "pods", labels=AGENT_PODS, registry=registry)
async def agent_pod_event(type: str | None, body: kopf.Body, memo: RoleMemo, **_: Any) -> None:
    """An agent pod's readiness changed."""
    memo.core.observe_agent_pod(type, body)


@kopf.on.event("", "v1", "pods", registry=registry)
async def pod_event(type: str | None, body: kopf.Body, memo: RoleMemo, **_: Any) -> None:
    """Any pod: which of our profiles it uses (deletion waits while one does)."""
    memo.core.observe_pod(type, body)


@kopf.on.delete(c.GROUP, c.VERSION, c.PROFILE_PLURAL, registry=registry)
async def profile_deleted(namespace: str | None, name: str, memo: RoleMemo, **_: Any) -> None:
    """Hold the finalizer while pods use the profile, then until every ready node removed the file."""
    key = f"{namespace}/{name}"
    try:
        await memo.core.prime_pods()
    except ApiError as e:
        raise kopf.TemporaryError(f"cannot list pods to check for users of the profile: {e}", delay=2) from e
    pods = memo.core.pods_using(key)
    if pods:
        shown = ", ".join(pods[:5]) + (f" and {len(pods) - 5} more" if len(pods) > 5 else "")
        # Each retry is a patch of the profile that every agent's watch receives, so pods
        # (often long-lived) are re-checked every 5 s rather than every second.
        raise kopf.TemporaryError(f"waiting for {len(pods)} pod(s) using the profile: {shown}", delay=5)
    blockers = memo.core.deletion_blockers(key)
    if blockers:
        shown = ", ".join(blockers[:5]) + (f" and {len(blockers) - 5} more" if len(blockers) > 5 else "")
        raise kopf.TemporaryError(f"waiting for nodes to remove the file: {shown}", delay=1)


# The validating webhook registers on ``registry`` above, so it is imported last.
from . import admission  # noqa: E402
