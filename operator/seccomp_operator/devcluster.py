"""An in-process cluster for the demo and the integration tests.

:class:`ClusterEmulator` extends kmock's ``KubernetesEmulator`` (an in-memory API
server over HTTP, by Kopf's author) with what our logic relies on and the plain
emulator leaves out: ``metadata.uid``, ``creationTimestamp``, ``resourceVersion``,
``generation`` bumped on spec changes only, and status-subresource semantics (a
write to ``/status`` changes only ``status``; a write to the main resource cannot
change ``status``; ``status`` is dropped on create).

:class:`DevCluster` runs that emulator on a loopback port, declares the core
resources and our CRDs, and starts the real controller and agents in-process,
each with its own Kopf registry and memo.  Since there is no kubelet, it also plays
the kubelet's part for agent pods: one pod per started agent, Ready while the agent
runs, not Ready (with a reason) when it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import dicts as kmock_dicts

from . import agent_handlers, controller_handlers, policy, roles
from . import constants as c
from .agent import Agent, AgentConfig
from .controller import Controller, ControllerConfig
from .kube import Endpoint

#: Resources with a status subresource (on those, ``status`` is written via ``/status`` only).
_STATUS_SUBRESOURCE = {(c.GROUP, c.VERSION, c.PROFILE_PLURAL), ("", "v1", "pods"), ("", "v1", "nodes")}

OPERATOR_NAMESPACE = "seccomp-operator"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the emulator served: ``method`` (``GET``, ``POST``...), the resource's
    ``plural`` (empty for non-resource paths), ``subresource`` (``status`` or empty),
    ``watch`` (a watch stream) and the object ``name`` (empty for collections)."""

    method: str
    plural: str
    subresource: str
    watch: bool
    name: str


class ClusterEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator plus uid, resourceVersion, generation and status-subresource rules."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._rv = itertools.count(1)
        self._log: list[RequestRecord] = []
        #: id(request) -> (arrival time, is a watch) for requests still being served.
        self._inflight: dict[int, tuple[float, bool]] = {}

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, in arrival order (a copy; see :class:`RequestRecord`)."""
        return list(self._log)

    def _key(self, request: Any) -> tuple[str, str, str]:
        res = request.resource
        return (str(res.group or ""), str(res.version or ""), str(res.plural or ""))

    async def _handle(self, request: Any) -> Any:
        res = request.resource
        record = RequestRecord(
            method=str(request.method).upper().rsplit(".", 1)[-1],
            plural=str(getattr(res, "plural", "") or ""),
            subresource=str(request.subresource or ""),
            watch="watch" in str(getattr(request, "params", "") or ""),
            name=str(request.name or ""),
        )
        self._log.append(record)
        self._trim()
        if request.resource is not None and isinstance(request.data, dict | list):
            stamped = self._stamp(request)
            if stamped is not request:
                # kmock matches reactions against the requests it has logged (by identity),
                # so the stamped copy takes the original's place in that log.
                for i in range(len(self._requests) - 1, -1, -1):
                    if self._requests[i] is request:
                        self._requests[i] = stamped
                        break
                request = stamped
        self._inflight[id(request)] = (time.monotonic(), record.watch)
        try:
            return await super()._handle(request)
        finally:
            self._inflight.pop(id(request), None)

    def _trim(self) -> None:
        """Keep kmock's request log short: it matches every request against reactions by
        iterating over all requests it has logged, so each request would cost O(all so far).

        Kept: the last 16 and every request still being served (whose reaction may not be
        chosen yet), except watch streams older than 2 s (chosen long ago, served forever).
        Our own log (:attr:`requests`) keeps everything.
        """
        if len(self._requests) <= 64:
            return
        now = time.monotonic()

        def needed(r: Any) -> bool:
            seen = self._inflight.get(id(r))
            return seen is not None and not (seen[1] and now - seen[0] > 2.0)

        head, tail = self._requests[:-16], self._requests[-16:]
        self._requests[:] = [r for r in head if needed(r)] + tail

    def _stamp(self, request: Any) -> Any:
        has_status = self._key(request) in _STATUS_SUBRESOURCE
        action = request.action
        if action == kmock.action.CREATE and isinstance(request.data, dict):
            data = copy.deepcopy(request.data)
            meta = data.setdefault("metadata", {})
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            meta["resourceVersion"] = str(next(self._rv))
            if has_status and request.subresource is None:
                data.pop("status", None)
            return attrs.evolve(request, data=data)
        if action == kmock.action.UPDATE and request.name is not None:
            existing = self._existing(request)
            if existing is None:
                return request
            patch = request.data
            if isinstance(patch, list):  # JSON patch: apply here, then send on as the equal merge patch
                try:
                    merged = dict(kmock_dicts.patch_dict(existing, patch))
                except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
                    # As the real API server does for a failed "test" op (Kopf relies on it
                    # for optimistic concurrency on resourceVersion).
                    raise kmock.KubernetesError(status=422, reason="Invalid", message=str(e)) from None
                patch = _merge_diff(existing, merged)
            patch = copy.deepcopy(dict(patch))
            if request.subresource == "status":
                patch = {"status": patch.get("status")}
            elif has_status:
                patch.pop("status", None)
            meta = patch.setdefault("metadata", {}) or {}
            patch["metadata"] = meta
            for fixed in ("uid", "creationTimestamp", "generation", "name", "namespace"):
                meta.pop(fixed, None)
            if "spec" in patch:
                new_spec = kmock_dicts.patch_dict(existing.get("spec") or {}, patch["spec"] or {})
                if dict(new_spec) != dict(existing.get("spec") or {}):
                    meta["generation"] = int((existing.get("metadata") or {}).get("generation") or 1) + 1
            meta["resourceVersion"] = str(next(self._rv))
            return attrs.evolve(request, data=patch)
        return request

    def _existing(self, request: Any) -> dict[str, Any] | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects:
            return None
        obj = self.objects[key]
        if obj.deleted:
            return None
        return copy.deepcopy(dict(obj.raw))


def _merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            sub = _merge_diff(old[key], value)
            if sub:
                patch[key] = sub
        elif old.get(key) != value or key not in old:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


@dataclass
class RoleHandle:
    """A running role: its thread and event loop, its stop flag and its memo.

    Each role runs in its own thread with its own event loop, as it would in its own
    process: Kopf cancels every task created after an operator started when that
    operator stops, so roles sharing one loop would cancel each other.
    """

    name: str
    thread: threading.Thread
    stop_flag: threading.Event
    memo: roles.RoleMemo
    errors: list[BaseException] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def agent(self) -> Agent:
        """The agent logic object (agents only)."""
        assert isinstance(self.memo.core, Agent)
        return self.memo.core

    @property
    def controller(self) -> Controller:
        """The controller logic object (controller only)."""
        assert isinstance(self.memo.core, Controller)
        return self.memo.core


def _crd_info(kind: str, singular: str, shortnames: tuple[str, ...], namespaced: bool, status: bool) -> Any:
    return kmock.ResourceInfo(
        kind=kind,
        singular=singular,
        namespaced=namespaced,
        shortnames=set(shortnames),
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        subresources={"status"} if status else set(),
    )


class DevCluster:
    """The emulator on a loopback port, plus helpers to add nodes and run roles.

    Use as ``async with DevCluster() as cluster:``; every role started is stopped on exit.
    """

    def __init__(self) -> None:
        self.emulator = ClusterEmulator()
        self._server: Any = None
        self._stack = contextlib.AsyncExitStack()
        self.roles: dict[str, RoleHandle] = {}

    async def __aenter__(self) -> DevCluster:
        # Roles run in threads on purpose (see RoleHandle); Kopf's warning about OS signals
        # not being handled there is expected and only noise.
        logging.getLogger("kopf._core.reactor.running").setLevel(logging.ERROR)
        await self._stack.__aenter__()
        await self._stack.enter_async_context(self.emulator)
        self._server = await self._stack.enter_async_context(kmock.Server(self.emulator))
        res = self.emulator.resources
        res["v1/namespaces"] = _crd_info("Namespace", "namespace", ("ns",), False, False)
        res["v1/nodes"] = _crd_info("Node", "node", ("no",), False, True)
        res["v1/pods"] = _crd_info("Pod", "pod", ("po",), True, True)
        res["v1/events"] = _crd_info("Event", "event", ("ev",), True, False)
        res[f"{c.GROUP}/{c.VERSION}/{c.PROFILE_PLURAL}"] = _crd_info(
            c.PROFILE_KIND, c.PROFILE_SINGULAR, c.PROFILE_SHORT_NAMES, True, True
        )
        res[f"{c.GROUP}/{c.VERSION}/{c.NODE_STATUS_PLURAL}"] = _crd_info(
            c.NODE_STATUS_KIND, c.NODE_STATUS_SINGULAR, c.NODE_STATUS_SHORT_NAMES, False, False
        )
        res[f"{c.GROUP}/{c.VERSION}/{policy.POLICY_PLURAL}"] = _crd_info(
            policy.POLICY_KIND, policy.POLICY_SINGULAR, policy.POLICY_SHORT_NAMES, False, False
        )
        await self.add_namespace(OPERATOR_NAMESPACE)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for name in list(self.roles):
            await self.stop_role(name)
        await self._stack.__aexit__(*exc)

    @property
    def url(self) -> str:
        """Base URL of the emulator (``http://127.0.0.1:PORT``)."""
        return str(self._server.url).rstrip("/")

    @property
    def endpoint(self) -> Endpoint:
        """An :class:`Endpoint` for our roles and API seam."""
        return Endpoint(server=self.url)

    # --- raw API ---------------------------------------------------------------------
    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One HTTP call to the emulator; returns the decoded JSON.  Raises on HTTP >= 400."""
        async with self._server.client.request(method, path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data}")
            return data

    async def create(self, path: str, body: dict[str, Any]) -> Any:
        """POST an object to a collection path."""
        return await self.request("POST", path, body)

    async def patch(self, path: str, body: dict[str, Any]) -> Any:
        """PATCH (merge) an object."""
        return await self.request("PATCH", path, body)

    async def delete(self, path: str) -> Any:
        """DELETE an object."""
        return await self.request("DELETE", path)

    async def get(self, path: str) -> Any:
        """GET an object or a list."""
        return await self.request("GET", path)

    # --- fixtures of the world ------------------------------------------------------------
    async def add_namespace(self, name: str) -> None:
        """Create a Namespace.

        Stored directly: kmock 0.8 cannot parse ``POST /api/v1/namespaces`` (it reads
        ``namespaces`` as the start of a namespaced path), and nothing here watches
        namespaces, so no watch event is missed.
        """
        self.emulator.objects["v1/namespaces", None, name] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": _now()},
        }

    async def add_node(
        self, name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None
    ) -> None:
        """Create a Node, optionally with labels and ``spec.taints``."""
        spec: dict[str, Any] = {"taints": list(taints)} if taints else {}
        await self.create("/api/v1/nodes", {"metadata": {"name": name, "labels": labels or {}}, "spec": spec})

    async def get_node(self, name: str) -> dict[str, Any] | None:
        """A Node's body, or None."""
        try:
            return dict(await self.get(f"/api/v1/nodes/{name}"))
        except RuntimeError:
            return None

    async def add_pod(
        self, namespace: str, name: str, spec: dict[str, Any], *, phase: str = "Running"
    ) -> None:
        """Create a pod with ``spec`` (as a user's workload; nobody runs it) in ``phase``."""
        path = f"/api/v1/namespaces/{namespace}/pods"
        await self.create(path, {"metadata": {"name": name, "namespace": namespace}, "spec": spec})
        await self.patch(f"{path}/{name}/status", {"status": {"phase": phase}})

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod."""
        await self.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")

    async def delete_node(self, name: str) -> None:
        """Delete a Node (its agent pod goes with it, as the node lifecycle controller does)."""
        await self.delete(f"/api/v1/nodes/{name}")
        with contextlib.suppress(RuntimeError):
            await self.delete(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/agent-{name}")

    async def set_agent_pod(self, node: str, *, ready: bool, reason: str = "") -> None:
        """Play the kubelet: create or update the agent pod on ``node`` with this readiness."""
        path = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods"
        name = f"agent-{node}"
        status: dict[str, Any] = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": "agent",
                    "ready": ready,
                    "state": {"running": {}} if ready else {"waiting": {"reason": reason}},
                }
            ],
        }
        try:
            await self.get(f"{path}/{name}")
        except RuntimeError:
            await self.create(
                path,
                {
                    "metadata": {
                        "name": name,
                        "namespace": OPERATOR_NAMESPACE,
                        "labels": dict(controller_handlers.AGENT_PODS),
                    },
                    "spec": {
                        "nodeName": node,
                        "containers": [{"name": "agent", "image": "seccomp-operator"}],
                    },
                },
            )
        await self.patch(f"{path}/{name}/status", {"status": status})

    async def apply_profile(self, body: dict[str, Any]) -> None:
        """Create a SeccompProfile, or replace its spec if it exists (as ``kubectl apply`` of a full file)."""
        meta = body["metadata"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        base = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{ns}/{c.PROFILE_PLURAL}"
        body = {"apiVersion": c.API_VERSION, "kind": c.PROFILE_KIND, **body}
        body["metadata"] = {**meta, "namespace": ns}
        try:
            await self.get(f"{base}/{name}")
        except RuntimeError:
            await self.create(base, body)
            return
        await self.replace_spec(ns, name, dict(body.get("spec") or {}))

    async def replace_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """Replace a profile's spec entirely (keys not in ``spec`` are removed)."""
        path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PROFILE_PLURAL}/{name}"
        current = (await self.get(path)).get("spec") or {}
        patch = {k: None for k in current if k not in spec}
        patch.update(spec)
        await self.patch(path, {"spec": patch})

    async def delete_profile(self, namespace: str, name: str) -> None:
        """Request deletion of a profile (the finalizer may hold it)."""
        await self.delete(f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PROFILE_PLURAL}/{name}")

    async def get_profile(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The profile's current body, or None once it is gone."""
        try:
            obj = await self.get(
                f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PROFILE_PLURAL}/{name}"
            )
        except RuntimeError:
            return None
        return dict(obj)

    async def get_node_status(self, node: str) -> dict[str, Any] | None:
        """A node's SeccompNodeStatus body, or None."""
        try:
            return dict(await self.get(f"/apis/{c.GROUP}/{c.VERSION}/{c.NODE_STATUS_PLURAL}/{node}"))
        except RuntimeError:
            return None

    # --- roles ----------------------------------------------------------------------
    async def start_controller(
        self,
        *,
        status_interval: float = 0.2,
        report_timeout: float = c.DEFAULT_REPORT_TIMEOUT,
        metrics_port: int | None = None,
    ) -> RoleHandle:
        """Start the controller in-process (``metrics_port=0``: serve metrics on a free port)."""
        memo = roles.RoleMemo(
            endpoint=self.endpoint,
            config=ControllerConfig(status_interval=status_interval, report_timeout=report_timeout),
        )
        if metrics_port is not None:
            memo.extras["metrics_port"] = metrics_port
        return await self._start("controller", controller_handlers.registry, memo)

    async def start_agent(
        self,
        node: str,
        kubelet_root: str,
        *,
        resync_seconds: float = 30.0,
        mark_ready: bool = True,
        candidates: tuple[str, ...] | None = None,
        metrics_port: int | None = None,
    ) -> RoleHandle:
        """Start an agent for ``node`` writing under ``kubelet_root``; its pod is marked Ready.

        ``candidates`` replaces the agent's list of other plausible kubelet roots (tests
        use temporary directories standing in for ``/var/lib/k0s/kubelet`` and the like).
        """
        cfg = AgentConfig(node_name=node, kubelet_root=kubelet_root, resync_seconds=resync_seconds)
        if candidates is not None:
            cfg.kubelet_root_candidates = candidates
        memo = roles.RoleMemo(endpoint=self.endpoint, config=cfg)
        if metrics_port is not None:
            memo.extras["metrics_port"] = metrics_port
        handle = await self._start(f"agent/{node}", agent_handlers.registry, memo)
        if mark_ready:
            await self.set_agent_pod(node, ready=True)
        return handle

    async def stop_agent(self, node: str, *, reason: str = "CrashLoopBackOff") -> None:
        """Stop an agent and mark its pod not ready, as the kubelet would."""
        await self.stop_role(f"agent/{node}")
        await self.set_agent_pod(node, ready=False, reason=reason)

    async def _start(self, name: str, registry: Any, memo: roles.RoleMemo) -> RoleHandle:
        stop_flag, ready_flag = threading.Event(), threading.Event()
        handle = RoleHandle(name, threading.Thread(), stop_flag, memo)

        async def main() -> None:
            handle.loop = asyncio.get_running_loop()
            await roles.run(registry, memo, stop_flag=stop_flag, ready_flag=ready_flag)

        def thread_main() -> None:
            try:
                asyncio.run(main())
            except BaseException as e:  # surfaced by _start / stop_role
                handle.errors.append(e)
            finally:
                ready_flag.set()

        handle.thread = threading.Thread(target=thread_main, name=name, daemon=True)
        self.roles[name] = handle
        handle.thread.start()
        if not await asyncio.to_thread(ready_flag.wait, _START_TIMEOUT):
            raise TimeoutError(f"{name} did not start within {_START_TIMEOUT} s")
        deadline = time.monotonic() + _START_TIMEOUT
        while memo.core is None and not handle.errors and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the startup handler creates the core right before ready
        if handle.errors:
            raise RuntimeError(f"{name} failed to start") from handle.errors[0]
        return handle

    async def stop_role(self, name: str) -> None:
        """Stop one role gracefully (Kopf cleanup runs); cancel its loop's tasks if it lingers."""
        handle = self.roles.pop(name, None)
        if handle is None:
            return
        handle.stop_flag.set()
        await asyncio.to_thread(handle.thread.join, _STOP_TIMEOUT)
        if handle.thread.is_alive() and handle.loop is not None:
            loop = handle.loop

            def cancel_all() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(cancel_all)
            await asyncio.to_thread(handle.thread.join, _STOP_TIMEOUT)
