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
import json
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


def _items(result: Any, what: str) -> list[dict[str, Any]]:
    items = result.get("items") if isinstance(result, Mapping) else None
    if not isinstance(items, list):
        raise ApiError(0, f"malformed list response for {what} (no items)")
    return [cast(dict[str, Any], i) for i in items]


def _json(resp: Any) -> dict[str, Any]:
    """Decode a raw (``_preload_content=False``) response body.

    Raises:
        ApiError: the body is not a JSON object.
    """
    try:
        data = json.loads(resp.data)
    except (ValueError, AttributeError) as e:
        raise ApiError(0, f"malformed response: {e}") from None
    if not isinstance(data, dict):
        raise ApiError(0, "malformed response: not a JSON object")
    return cast(dict[str, Any], data)


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
        return _items(result, c.PROFILE_PLURAL)

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

    async def list_node_statuses(self) -> list[dict[str, Any]]:
        """All SeccompNodeStatus objects (complete, or the call raises)."""
        result = await self._call(
            self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.NODE_STATUS_PLURAL
        )
        return _items(result, c.NODE_STATUS_PLURAL)

    # --- core ----------------------------------------------------------------------
    async def _list_core(self, path: str, query: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        # kubernetes 37's ApiClient.call_api(method, url, ...) takes no query or
        # response-type arguments; read the raw body of the typed list calls instead.
        selector = dict(query or []).get("labelSelector")
        if path == "/api/v1/nodes":
            resp = await self._call(self._core.list_node, _preload_content=False)
        elif path == "/api/v1/pods":
            resp = await self._call(
                self._core.list_pod_for_all_namespaces, label_selector=selector, _preload_content=False
            )
        else:
            raise ValueError(f"no list call for {path}")
        return _items(_json(resp), path)

    async def list_nodes(self) -> list[dict[str, Any]]:
        """All Nodes as raw dicts (complete, or the call raises)."""
        return await self._list_core("/api/v1/nodes")

    async def list_agent_pods(self) -> list[dict[str, Any]]:
        """The node agents' pods in all namespaces (by the agent label), as raw dicts.

        The label selector is also checked here, since not every server applies it.
        """
        selector = f"{c.AGENT_POD_LABEL}={c.AGENT_POD_LABEL_VALUE}"
        pods = await self._list_core("/api/v1/pods", [("labelSelector", selector)])
        return [
            p
            for p in pods
            if ((p.get("metadata") or {}).get("labels") or {}).get(c.AGENT_POD_LABEL)
            == c.AGENT_POD_LABEL_VALUE
        ]

    async def list_pods(self) -> list[dict[str, Any]]:
        """Every pod in every namespace, as raw dicts (complete, or the call raises).

        Used once by the controller before it first releases a finalizer; the pod
        watch keeps it current afterwards.
        """
        return await self._list_core("/api/v1/pods")

    async def _read_node_raw(self, name: str) -> dict[str, Any] | None:
        try:
            resp = await self._call(self._core.read_node, name, _preload_content=False)
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return _json(resp)

    async def get_node_labels(self, name: str) -> dict[str, str] | None:
        """The labels of Node ``name`` (``{}`` when it has none), or None if the node is gone."""
        node = await self._read_node_raw(name)
        if node is None:
            return None
        labels = (node.get("metadata") or {}).get("labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    async def remove_node_taint(self, name: str, key: str, effect: str) -> bool:
        """Remove the taint ``key`` with ``effect`` from Node ``name``, leaving every other taint.

        A JSON patch that first ``test``s the exact taint at its index, so a concurrent
        change to the taint list makes the server refuse it (422/409) and we re-read and
        retry (at most 5 times).

        Returns:
            True if a taint was removed, False if the node did not carry it (or is gone).

        Raises:
            ApiError: the patch kept failing, or another API error.
        """
        last: ApiError | None = None
        for _ in range(5):
            node = await self._read_node_raw(name)
            if node is None:
                return False
            taints = (node.get("spec") or {}).get("taints") or []
            index = next(
                (
                    i
                    for i, t in enumerate(taints)
                    if isinstance(t, Mapping) and t.get("key") == key and t.get("effect") == effect
                ),
                None,
            )
            if index is None:
                return False
            patch = [
                {"op": "test", "path": f"/spec/taints/{index}", "value": taints[index]},
                {"op": "remove", "path": f"/spec/taints/{index}"},
            ]
            try:
                await self._call(self._core.patch_node, name, patch)
                return True
            except ApiError as e:
                if e.status not in (409, 422):
                    raise
                last = e
        raise last or ApiError(0, "taint removal did not converge")

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
