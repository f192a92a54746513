"""The seam to the Kubernetes API for our own reads and writes.

Kopf watches; this module writes: profile status (controller), node reports
(agent), events (controller) and the authoritative full list of profiles that the
agent's garbage collection needs.  It speaks HTTP itself over ``aiohttp`` (which
Kopf already uses), with the same credentials Kopf logs in with
(:func:`connection_info`): the roles never import the ``kubernetes`` client
package, whose import alone costs an agent about 20 MiB of its memory.

Tests and the embedded demo point it at the in-process API emulator through an
explicit :class:`Endpoint`; in a cluster it uses the pod's service account, and on
a workstation the kubeconfig (Kopf's own reading of it: token, client certificate
or basic auth; no exec plugins).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import json
import re
import ssl
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import aiohttp

from . import constants as c

if TYPE_CHECKING:  # only for the type of make_api_client; never imported by the roles
    import kopf
    import kubernetes.client

#: Seconds one API call may take (connect, send, read the whole answer).
REQUEST_TIMEOUT = 30.0
#: Seconds after which the credentials are read again (service account tokens rotate).
RELOGIN_SECONDS = 60.0

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


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


#: Client libraries Kopf imports when they are installed (for login handlers the roles
#: do not use: they log in with :func:`connection_info`).
CLIENT_LIBRARIES = ("kubernetes", "kubernetes_asyncio", "pykube")


def block_client_libraries() -> None:
    """Make the :data:`CLIENT_LIBRARIES` unimportable in this process (``import`` raises ImportError).

    For a role's entry point, called before anything imports Kopf: Kopf imports the
    ``kubernetes`` client whenever it is installed (about 20 MiB of an agent's memory)
    and then skips it when it cannot.  A library that is already imported stays.
    """
    import sys

    for name in CLIENT_LIBRARIES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def connection_info(endpoint: Endpoint, **login_kwargs: Any) -> kopf.ConnectionInfo | None:
    """The credentials for ``endpoint``, as the roles' Kopf login handler returns them.

    An explicit server is used as given; otherwise the pod's service account, else the
    kubeconfig (Kopf's minimal readers of both).  ``login_kwargs`` are what Kopf passes
    to a login handler (``settings``, ``logger``...); without them default settings
    are used.  Returns None when there is neither a service account nor a kubeconfig.
    """
    import kopf  # the roles have imported it already; offline tools never get here

    if endpoint.server is not None:
        return kopf.ConnectionInfo(
            server=endpoint.server,
            insecure=endpoint.insecure or None,
            scheme="Bearer" if endpoint.token else None,
            token=endpoint.token,
        )
    kwargs = dict(login_kwargs)
    kwargs.setdefault("settings", kopf.OperatorSettings())
    found: kopf.ConnectionInfo | None = kopf.login_with_service_account(
        **kwargs
    ) or kopf.login_with_kubeconfig(**kwargs)
    return found


def make_api_client(endpoint: Endpoint) -> kubernetes.client.ApiClient:
    """Build a configured ``kubernetes.client.ApiClient`` for ``endpoint`` (the kubectl plugin).

    The ``kubernetes`` package is imported here, on first use, so that the roles,
    which use :class:`KubeApi` instead, never load it.

    Raises:
        kubernetes.config.ConfigException: no in-cluster config and no kubeconfig.
    """
    import kubernetes.client
    import kubernetes.config

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


_stamp: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """Current UTC time as Kubernetes writes timestamps: ``2026-11-29T08:00:00Z``.

    Formatted once per second (an agent stamps every entry of a pass with it).
    """
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        text = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _stamp = (second, text)
    return _stamp[1]


def _items(result: Any, what: str) -> list[dict[str, Any]]:
    items = result.get("items") if isinstance(result, Mapping) else None
    if not isinstance(items, list):
        raise ApiError(0, f"malformed list response for {what} (no items)")
    return [cast(dict[str, Any], i) for i in items]


def _object(data: Any) -> dict[str, Any]:
    """A decoded response that must be a JSON object.

    Raises:
        ApiError: it is not.
    """
    if not isinstance(data, dict):
        raise ApiError(0, "malformed response: not a JSON object")
    return cast(dict[str, Any], data)


# --- HTTP --------------------------------------------------------------------------------------


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext:
    """TLS settings from the credentials: CA (file or PEM data), client certificate, insecure."""
    ca_data = info.ca_data.decode() if isinstance(info.ca_data, bytes) else info.ca_data
    context = ssl.create_default_context(cafile=info.ca_path, cadata=ca_data or None)
    with contextlib.ExitStack() as stack:

        def path_of(path: Any, data: str | bytes | None) -> Any:
            if path or not data:
                return path
            f = stack.enter_context(tempfile.NamedTemporaryFile(buffering=0))  # ssl reads files only
            f.write(data.encode() if isinstance(data, str) else data)
            return f.name

        cert = path_of(info.certificate_path, info.certificate_data)
        key = path_of(info.private_key_path, info.private_key_data)
        if cert and key:
            context.load_cert_chain(certfile=cert, keyfile=key)
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _auth_headers(info: kopf.ConnectionInfo) -> dict[str, str]:
    """The ``Authorization`` header for the credentials (none when there are none)."""
    if info.username and info.password:
        return {"Authorization": aiohttp.BasicAuth(info.username, info.password).encode()}
    if info.token:
        return {"Authorization": f"{info.scheme or 'Bearer'} {info.token}"}
    return {}


class _Http:
    """One ``aiohttp`` session to the API server, created on first use in the running loop.

    Credentials are read again every :data:`RELOGIN_SECONDS` and after a 401 (a rotated
    service account token), and the call is then tried once more.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._headers: dict[str, str] = {}
        self._login_at = -1e9

    def _login(self) -> None:
        info = connection_info(self.endpoint)
        if info is None:
            raise ApiError(0, "no API server: no in-cluster service account and no kubeconfig")
        self._server = str(info.server).rstrip("/")
        self._headers = {"Accept": "application/json", **_auth_headers(info)}
        self._login_at = time.monotonic()
        if self._session is None:
            https = self._server.startswith("https:")
            connector = aiohttp.TCPConnector(ssl=_ssl_context(info) if https else False)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        decode: bool = True,
    ) -> Any:
        """One API call; the decoded JSON answer (None when ``decode`` is False).

        Raises:
            ApiError: HTTP status >= 400 (``status`` and the Status message), or 0 when
                the server cannot be reached or the answer is not JSON.
        """
        for attempt in (1, 2):
            if self._session is None or time.monotonic() - self._login_at > RELOGIN_SECONDS:
                self._login()
            assert self._session is not None
            data = None if body is None else json.dumps(body).encode()
            headers = dict(self._headers)
            if data is not None:
                headers["Content-Type"] = content_type
            async with self._session.request(
                method, self._server + path, params=query, data=data, headers=headers
            ) as resp:
                raw = await resp.read()
                if resp.status == 401 and attempt == 1:
                    self._login_at = -1e9  # read the (rotated) token again, then retry once
                    continue
                if resp.status >= 400:
                    raise ApiError(resp.status, _status_message(raw, resp.reason))
                if not decode:
                    return None
                try:
                    return json.loads(raw)
                except ValueError as e:
                    raise ApiError(0, f"malformed response: {e}") from None
        raise ApiError(401, "unauthorized")  # pragma: no cover  (the loop returns or raises)

    async def close(self) -> None:
        """Close the session (its connections)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _status_message(raw: bytes, reason: str | None) -> str:
    """The ``message`` of a Kubernetes ``Status`` answer, else the HTTP reason phrase."""
    try:
        status = json.loads(raw)
    except ValueError:
        status = None
    if isinstance(status, Mapping) and status.get("message"):
        return str(status.get("reason") or reason or "") + f": {status['message']}"
    return str(reason or "error")


#: Characters Kubernetes names and namespaces consist of (nothing to escape in a URL path).
_PLAIN = re.compile(r"[a-z0-9.-]*")


def _path(prefix: str, *parts: str) -> str:
    """``prefix/part/part...`` with each part percent-encoded unless it is a plain name."""
    return "/".join([prefix, *(p if _PLAIN.fullmatch(p) else quote(p, safe="") for p in parts)])


class _CustomObjects:
    """The custom-object calls the roles make (named as the ``kubernetes`` client names them)."""

    def __init__(self, http: _Http) -> None:
        self.http = http

    async def list_cluster_custom_object(self, group: str, version: str, plural: str) -> Any:
        return await self.http.request("GET", _path(f"/apis/{group}/{version}", plural))

    async def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str) -> Any:
        return await self.http.request("GET", _path(f"/apis/{group}/{version}", plural, name))

    async def create_cluster_custom_object(
        self, group: str, version: str, plural: str, body: Mapping[str, Any]
    ) -> None:
        await self.http.request("POST", _path(f"/apis/{group}/{version}", plural), body=body, decode=False)

    async def patch_cluster_custom_object(
        self, group: str, version: str, plural: str, name: str, body: Mapping[str, Any]
    ) -> None:
        await self.http.request(
            "PATCH",
            _path(f"/apis/{group}/{version}", plural, name),
            body=body,
            content_type=MERGE_PATCH,
            decode=False,
        )

    async def delete_cluster_custom_object(self, group: str, version: str, plural: str, name: str) -> None:
        await self.http.request("DELETE", _path(f"/apis/{group}/{version}", plural, name), decode=False)

    async def patch_namespaced_custom_object_status(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Mapping[str, Any]
    ) -> None:
        path = _path(f"/apis/{group}/{version}/namespaces", namespace, plural, name, "status")
        await self.http.request("PATCH", path, body=body, content_type=MERGE_PATCH, decode=False)


class _CoreV1:
    """The core/v1 calls the roles make, as raw dicts."""

    def __init__(self, http: _Http) -> None:
        self.http = http

    async def list_node(self) -> Any:
        return await self.http.request("GET", "/api/v1/nodes")

    async def list_pod_for_all_namespaces(self, label_selector: str | None = None) -> Any:
        query = {"labelSelector": label_selector} if label_selector else None
        return await self.http.request("GET", "/api/v1/pods", query=query)

    async def read_node(self, name: str) -> Any:
        return await self.http.request("GET", _path("/api/v1/nodes", name))

    async def patch_node(self, name: str, body: list[dict[str, Any]]) -> None:
        await self.http.request(
            "PATCH", _path("/api/v1/nodes", name), body=body, content_type=JSON_PATCH, decode=False
        )

    async def create_namespaced_event(self, namespace: str, body: Mapping[str, Any]) -> None:
        await self.http.request(
            "POST", _path("/api/v1/namespaces", namespace, "events"), body=body, decode=False
        )


class KubeApi:
    """Asynchronous facade over the calls the operator makes itself.

    Every method raises :class:`ApiError` on failure (status 404 for a missing
    object is reported as ``None`` by the ``get_*`` methods instead).  Creating it
    opens nothing: the HTTP session is made on the first call, in the running loop.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self._http = _Http(endpoint)
        self._custom = _CustomObjects(self._http)
        self._core = _CoreV1(self._http)
        self._closing: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.close()

    def close(self) -> None:
        """Close the HTTP session from synchronous code: scheduled on the running loop, if any."""
        with contextlib.suppress(RuntimeError):  # no running loop: nothing was opened in it
            self._closing = asyncio.get_running_loop().create_task(self.aclose())

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call one of the calls above and map transport failures to ``ApiError(0, ...)``."""
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except ApiError:
            raise
        except (OSError, aiohttp.ClientError, TimeoutError) as e:  # refused, reset, timed out
            raise ApiError(0, f"API unreachable: {str(e) or type(e).__name__}") from None

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
        return _object(obj)

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
    async def list_nodes(self) -> list[dict[str, Any]]:
        """All Nodes as raw dicts (complete, or the call raises)."""
        return _items(await self._call(self._core.list_node), "/api/v1/nodes")

    async def list_agent_pods(self) -> list[dict[str, Any]]:
        """The node agents' pods in all namespaces (by the agent label), as raw dicts.

        The label selector is also checked here, since not every server applies it.
        """
        selector = f"{c.AGENT_POD_LABEL}={c.AGENT_POD_LABEL_VALUE}"
        result = await self._call(self._core.list_pod_for_all_namespaces, label_selector=selector)
        return [
            p
            for p in _items(result, "/api/v1/pods")
            if ((p.get("metadata") or {}).get("labels") or {}).get(c.AGENT_POD_LABEL)
            == c.AGENT_POD_LABEL_VALUE
        ]

    async def list_pods(self) -> list[dict[str, Any]]:
        """Every pod in every namespace, as raw dicts (complete, or the call raises).

        Used once by the controller before it first releases a finalizer; the pod
        watch keeps it current afterwards.
        """
        return _items(await self._call(self._core.list_pod_for_all_namespaces), "/api/v1/pods")

    async def _read_node_raw(self, name: str) -> dict[str, Any] | None:
        try:
            return _object(await self._call(self._core.read_node, name))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

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
        node = await self._read_node_raw(name)
        uid = ((node or {}).get("metadata") or {}).get("uid")
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
