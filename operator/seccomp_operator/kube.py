"""The seam to the Kubernetes API for our own reads and writes.

Kopf watches; this module writes: profile status (controller), node reports
(agent), events (controller) and the authoritative full list of profiles that the
agent's garbage collection needs.  It wraps the official ``kubernetes`` client
(synchronous) in :func:`asyncio.to_thread` so the roles stay asynchronous.

Tests and the embedded demo point it at the in-process API emulator through an
explicit :class:`Endpoint`; in a cluster it uses the pod's service account, and on
a workstation the kubeconfig.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from . import constants as c


@dataclass(frozen=True)
class Endpoint:
    """Where the API server is.  ``server=None`` means: in-cluster, else kubeconfig.

    Attributes:
        server: base URL such as ``http://127.0.0.1:34567`` (the emulator), or None.
        token: bearer token, if any.
        insecure: skip TLS verification (only for the local emulator).
    """

    server: str | None = None
    token: str | None = None
    insecure: bool = False


class ApiError(Exception):
    """An API call failed.  ``status`` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


def make_api_client(endpoint: Endpoint) -> kubernetes.client.ApiClient:
    """Build a configured ``kubernetes.client.ApiClient`` for ``endpoint``.

    Raises:
        kubernetes.config.ConfigException: no in-cluster config and no kubeconfig.
    """
    cfg = kubernetes.client.Configuration()
    if endpoint.server is not None:
        cfg.host = endpoint.server
        cfg.verify_ssl = not endpoint.insecure
        if endpoint.token:
            cfg.api_key = {"authorization": f"Bearer {endpoint.token}"}
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient(cfg)


def now_rfc3339() -> str:
    """Current UTC time as Kubernetes writes timestamps: ``2026-11-29T08:00:00Z``."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeApi:
    """Asynchronous facade over the calls the operator makes itself.

    Every method raises :class:`ApiError` on failure (status 404 for a missing
    object is reported as ``None`` by the ``get_*`` methods instead).
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self._client = make_api_client(endpoint)
        self._custom = kubernetes.client.CustomObjectsApi(self._client)
        self._core = kubernetes.client.CoreV1Api(self._client)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()  # type: ignore[no-untyped-call]

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as e:
            raise ApiError(int(e.status or 0), str(e.reason or e)) from None
        except (OSError, TransportError) as e:  # connection refused, timeouts, resets
            raise ApiError(0, f"API unreachable: {e}") from None

    # --- profiles ----------------------------------------------------------------
    async def list_profiles(self) -> list[dict[str, Any]]:
        """All SeccompProfiles in all namespaces, as raw dicts.

        The result is complete or the call raises: a failed or partial list is never
        returned as a short list (the agent's garbage collection relies on that).
        """
        result = await self._call(
            self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.PROFILE_PLURAL
        )
        items = result.get("items") if isinstance(result, Mapping) else None
        if not isinstance(items, list):
            raise ApiError(0, "malformed list response for seccompprofiles (no items)")
        return [cast(dict[str, Any], i) for i in items]

    async def patch_profile_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch ``status`` of one SeccompProfile (status subresource)."""
        await self._call(
            self._custom.patch_namespaced_custom_object_status,
            c.GROUP,
            c.VERSION,
            namespace,
            c.PROFILE_PLURAL,
            name,
            {"status": dict(status)},
        )

    # --- node reports --------------------------------------------------------------
    async def get_node_status(self, name: str) -> dict[str, Any] | None:
        """The SeccompNodeStatus named after node ``name``, or None if there is none."""
        try:
            obj = await self._call(
                self._custom.get_cluster_custom_object, c.GROUP, c.VERSION, c.NODE_STATUS_PLURAL, name
            )
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    async def create_node_status(self, body: Mapping[str, Any]) -> None:
        """Create a SeccompNodeStatus (cluster-scoped).  Raises ApiError 409 if it exists."""
        await self._call(
            self._custom.create_cluster_custom_object, c.GROUP, c.VERSION, c.NODE_STATUS_PLURAL, dict(body)
        )

    async def patch_node_status(self, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch a SeccompNodeStatus; ``None`` values delete keys (RFC 7386)."""
        await self._call(
            self._custom.patch_cluster_custom_object,
            c.GROUP,
            c.VERSION,
            c.NODE_STATUS_PLURAL,
            name,
            dict(patch),
        )

    async def delete_node_status(self, name: str) -> None:
        """Delete a SeccompNodeStatus; a missing one is not an error."""
        try:
            await self._call(
                self._custom.delete_cluster_custom_object, c.GROUP, c.VERSION, c.NODE_STATUS_PLURAL, name
            )
        except ApiError as e:
            if e.status != 404:
                raise

    # --- core ----------------------------------------------------------------------
    async def get_node_uid(self, name: str) -> str | None:
        """The uid of Node ``name`` (for owner references), or None if the node is gone."""
        try:
            node = await self._call(self._core.read_node, name)
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        uid = getattr(getattr(node, "metadata", None), "uid", None)
        return str(uid) if uid else None

    async def post_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "seccomp-operator-controller",
    ) -> None:
        """Post a core/v1 Event about ``involved`` (a resource body with metadata).

        Events are best effort: failures are swallowed, since an event must never
        stop a reconcile.
        """
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        now = now_rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:12]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", c.API_VERSION),
                "kind": involved.get("kind", c.PROFILE_KIND),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiError):
            await self._call(self._core.create_namespaced_event, namespace, body)
