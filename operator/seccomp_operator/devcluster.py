"""An in-process cluster for the demo and the integration tests.

:class:`ClusterEmulator` extends kmock's ``KubernetesEmulator`` (an in-memory API
server over HTTP, by Kopf's author).  kmock parses each request and serves API
discovery; the resource requests themselves (list, watch, get, create, patch,
delete of declared resources) are served by :class:`ClusterEmulator` directly, with
what our logic relies on and the plain emulator leaves out: ``metadata.uid``,
``creationTimestamp``, a cluster-wide ``resourceVersion`` (lists carry it, and a
watch started from it replays only later events, or answers ``410 Gone`` when it is
too old, as the real API server does), ``generation`` bumped on spec changes only,
status-subresource semantics (a write to ``/status`` changes only ``status``; a write
to the main resource cannot change ``status``; ``status`` is dropped on create), no
event and no new resourceVersion for a write that changes nothing, label and
``metadata.name``/``metadata.namespace`` field selectors, and a 422 on failed
JSON-patch tests, which Kopf relies on.

Why not kmock's own serving: it matches every request against every reaction and
every logged request, copies the whole object on every patch and keeps every
version, and serialises each watch event once per watcher; at hundreds of watchers
and writes that cost dominated every benchmark.  Here each watch event is
serialised once and written to every watcher that selects it.

:class:`DevCluster` runs that emulator on a loopback port, declares the core
resources and our CRDs, and starts the real controller and agents in-process,
each with its own Kopf registry and memo.  Since there is no kubelet, it also plays
the kubelet's part for agent pods: one pod per started agent, Ready while the agent
runs, not Ready (with a reason) when it is stopped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import dicts as kmock_dicts

from . import agent_handlers, controller_handlers, policy, roles
from . import constants as c
from .agent import Agent, AgentConfig
from .controller import Controller, ControllerConfig
from .kube import Endpoint

OPERATOR_NAMESPACE = "seccomp-operator"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
#: Watch events kept per resource for watches that resume from a resourceVersion; a
#: watch from an older version gets ``410 Gone`` (and Kopf lists again).
WATCH_HISTORY = 8192

#: ``(group, version, plural)`` of a resource ("" is the core group).
ResourceKey = tuple[str, str, str]
#: ``(namespace or None, name)`` of an object within its resource.
ObjectKey = tuple[str | None, str]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _event_line(type_: str, raw: bytes) -> bytes:
    """A watch event's JSON line around an object already serialised."""
    return b'{"type":"' + type_.encode() + b'","object":' + raw + b"}\n"


def _merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge patch: ``None`` removes a key, objects merge, anything else replaces.

    ``target`` is not modified; unchanged sub-objects are shared with the result.
    """
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            current = target.get(key)
            out[key] = _merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the emulator served: ``method`` (``GET``, ``POST``...), the resource's
    ``plural`` (empty for non-resource paths), ``subresource`` (``status`` or empty),
    ``watch`` (a watch stream), the object ``name`` (empty for collections) and ``at``,
    when it arrived (``time.monotonic()``, seconds)."""

    method: str
    plural: str
    subresource: str
    watch: bool
    name: str
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class _Kind:
    """What the emulator knows of a declared resource."""

    kind: str
    api_version: str
    namespaced: bool
    status_subresource: bool


@dataclass(frozen=True, slots=True)
class _Selector:
    """What a list or watch selects: a namespace (None: all), and field and label selectors.

    ``labels`` holds ``(key, op, value)`` with op ``=``, ``!=``, ``exists`` or ``!exists``.
    """

    namespace: str | None = None
    name: str | None = None
    labels: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, namespace: str | None, params: Mapping[str, str]) -> _Selector:
        """From the request's namespace and its ``labelSelector``/``fieldSelector`` parameters.

        Raises:
            ValueError: a selector this emulator cannot evaluate (set-based ``in``/``notin``,
                a field other than ``metadata.name``/``metadata.namespace``).
        """
        name = None
        for term in filter(None, (params.get("fieldSelector") or "").split(",")):
            key, _, value = term.replace("==", "=").partition("=")
            if key == "metadata.name":
                name = value
            elif key == "metadata.namespace":
                namespace = value
            else:
                raise ValueError(f"unsupported field selector {term!r}")
        labels = []
        for term in filter(None, (t.strip() for t in (params.get("labelSelector") or "").split(","))):
            if " in " in term or " notin " in term:
                raise ValueError(f"unsupported label selector {term!r}")
            if "!=" in term:
                key, value = term.split("!=", 1)
                labels.append((key.strip(), "!=", value.strip()))
            elif "=" in term:
                key, value = term.replace("==", "=").split("=", 1)
                labels.append((key.strip(), "=", value.strip()))
            elif term.startswith("!"):
                labels.append((term[1:].strip(), "!exists", ""))
            else:
                labels.append((term, "exists", ""))
        return cls(namespace, name, tuple(labels))

    def matches(self, namespace: str | None, name: str, labels: Mapping[str, Any]) -> bool:
        """Whether an object with this identity and these labels is selected."""
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.name is not None and name != self.name:
            return False
        for key, op, value in self.labels:
            have = labels.get(key)
            if (
                (op == "=" and have != value)
                or (op == "!=" and have == value)
                or (op == "exists" and key not in labels)
                or (op == "!exists" and key in labels)
            ):
                return False
        return True


@dataclass(slots=True, eq=False)
class _Watcher:
    """One open watch stream: what it selects and the serialised events waiting for it."""

    selector: _Selector
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


@dataclass(frozen=True, slots=True)
class _Event:
    """One watch event as served: its resourceVersion, the object's identity and labels,
    and the serialised JSON line (``{"type": ..., "object": ...}\\n``)."""

    rv: int
    namespace: str | None
    name: str
    labels: Mapping[str, Any]
    line: bytes


class _ApiStatus(Exception):
    """An API error answered as a ``Status`` object (``code`` is the HTTP status)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, Mapping) else {}


class ClusterEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator; resource requests are served by :meth:`_serve` (see the module docstring).

    The store is :attr:`store`: ``(group, version, plural)`` -> ``(namespace, name)`` ->
    the object as served (a plain dict, replaced, never mutated, on every write).  Each
    object is serialised once per write; the answer to the write, its watch event and
    later reads reuse those bytes.
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._log: list[RequestRecord] = []
        #: id(request) -> (arrival time, is a watch) for requests still being served by kmock.
        self._inflight: dict[int, tuple[float, bool]] = {}
        self._kinds: dict[ResourceKey, _Kind] = {}
        self.store: dict[ResourceKey, dict[ObjectKey, dict[str, Any]]] = collections.defaultdict(dict)
        #: The JSON of every stored object (same keys as :attr:`store`).
        self._raw: dict[ResourceKey, dict[ObjectKey, bytes]] = collections.defaultdict(dict)
        self._watchers: dict[ResourceKey, set[_Watcher]] = collections.defaultdict(set)
        self._history: dict[ResourceKey, collections.deque[_Event]] = collections.defaultdict(
            lambda: collections.deque(maxlen=WATCH_HISTORY)
        )
        #: Highest resourceVersion dropped from each resource's history (a watch from
        #: an older version has missed events: 410 Gone).
        self._history_floor: dict[ResourceKey, int] = collections.defaultdict(int)

    # --- bookkeeping ---------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, in arrival order (a copy; see :class:`RequestRecord`)."""
        return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests were served so far (``len(requests)`` without the copy)."""
        return len(self._log)

    @property
    def pending_events(self) -> int:
        """Watch events queued for open watch streams and not written to them yet."""
        return sum(w.queue.qsize() for watchers in self._watchers.values() for w in watchers)

    def requests_since(self, start: int) -> list[RequestRecord]:
        """The requests served after the first ``start`` ones."""
        return self._log[start:]

    def declare(
        self,
        group: str,
        version: str,
        plural: str,
        *,
        kind: str,
        singular: str,
        shortnames: tuple[str, ...],
        namespaced: bool,
        status: bool,
    ) -> None:
        """Declare a resource: served by :meth:`_serve` and listed in API discovery."""
        self.resources[f"{group}/{version}/{plural}" if group else f"{version}/{plural}"] = (
            kmock.ResourceInfo(
                kind=kind,
                singular=singular,
                namespaced=namespaced,
                shortnames=set(shortnames),
                verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
                subresources={"status"} if status else set(),
            )
        )
        api_version = f"{group}/{version}" if group else version
        self._kinds[(group, version, plural)] = _Kind(kind, api_version, namespaced, status)

    def put_object(self, group: str, version: str, plural: str, body: Mapping[str, Any]) -> None:
        """Store an object as is, with no watch event (fixtures nothing watches)."""
        meta = body.get("metadata") or {}
        self._put((group, version, plural), (meta.get("namespace"), str(meta["name"])), dict(body))

    def _key(self, request: Any) -> ResourceKey:
        res = request.resource
        return (str(res.group or ""), str(res.version or ""), str(res.plural or ""))

    # --- dispatch -----------------------------------------------------------------------
    async def _handle(self, request: Any) -> Any:
        action = request.action
        record = RequestRecord(
            method=str(request.method).upper().rsplit(".", 1)[-1],
            plural=str(getattr(request.resource, "plural", "") or ""),
            subresource=str(request.subresource or ""),
            watch=action == kmock.action.WATCH,
            name=str(request.name or ""),
            at=time.monotonic(),
        )
        self._log.append(record)
        if request.resource is not None and self._key(request) in self._kinds and action is not None:
            # Not kmock's to match: drop it from kmock's log of requests (which kmock scans
            # for every request it matches) right away.
            if self._requests and self._requests[-1] is request:
                self._requests.pop()
            try:
                return await self._serve(request)
            except _ApiStatus as e:
                return self._status(e.code, e.reason, e.message)
        self._trim()
        self._inflight[id(request)] = (time.monotonic(), record.watch)
        try:
            return await super()._handle(request)
        finally:
            self._inflight.pop(id(request), None)

    def _trim(self) -> None:
        """Keep kmock's request log short (only discovery and unknown paths reach kmock now):
        it matches every request against reactions by iterating over all requests it has
        logged.  Kept: the last 16 and every request still being served, except watch
        streams older than 2 s.
        """
        if len(self._requests) <= 64:
            return
        now = time.monotonic()

        def needed(r: Any) -> bool:
            seen = self._inflight.get(id(r))
            return seen is not None and not (seen[1] and now - seen[0] > 2.0)

        head, tail = self._requests[:-16], self._requests[-16:]
        self._requests[:] = [r for r in head if needed(r)] + tail

    @staticmethod
    def _json(value: Any, status: int = 200) -> aiohttp.web.Response:
        return ClusterEmulator._raw_json(_dumps(value), status)

    @staticmethod
    def _raw_json(body: bytes, status: int = 200) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=body, status=status, content_type="application/json")

    def _status(self, code: int, reason: str, message: str) -> aiohttp.web.Response:
        body = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
        return self._json(body, code)

    async def _serve(self, request: Any) -> aiohttp.web.StreamResponse:
        key = self._key(request)
        kind = self._kinds[key]
        action = request.action
        params: Mapping[str, str] = request.params or {}
        namespace = request.namespace if kind.namespaced else None
        if action == kmock.action.WATCH:
            return await self._watch_response(request, key, kind, namespace, params)
        if action == kmock.action.LIST:
            return self._list_response(key, kind, namespace, params)
        if action == kmock.action.CREATE:
            return self._raw_json(self._create(request, key, kind, namespace), 201)
        if request.name is None:
            raise _ApiStatus(405, "MethodNotAllowed", f"{request.method} on a collection")
        okey: ObjectKey = (namespace, str(request.name))
        current = self.store[key].get(okey)
        if current is None:
            raise _ApiStatus(404, "NotFound", f'{key[2]} "{request.name}" not found')
        if action == kmock.action.FETCH:
            return self._raw_json(self._raw[key][okey])
        if action == kmock.action.UPDATE:
            return self._raw_json(self._update(request, key, kind, okey, current))
        if action == kmock.action.DELETE:
            return self._raw_json(self._delete(key, okey, current))
        raise _ApiStatus(405, "MethodNotAllowed", f"{request.method} is not served")

    # --- reads ---------------------------------------------------------------------------
    def _selector(self, namespace: str | None, params: Mapping[str, str]) -> _Selector:
        try:
            return _Selector.parse(namespace, params)
        except ValueError as e:
            raise _ApiStatus(400, "BadRequest", str(e)) from None

    def _selected(self, key: ResourceKey, selector: _Selector) -> Iterable[bytes]:
        """The JSON of every object of ``key`` that ``selector`` selects."""
        raw = self._raw[key]
        for okey, obj in self.store[key].items():
            if selector.matches(okey[0], okey[1], _labels(obj)):
                yield raw[okey]

    def _list_response(
        self, key: ResourceKey, kind: _Kind, namespace: str | None, params: Mapping[str, str]
    ) -> aiohttp.web.Response:
        selector = self._selector(namespace, params)
        head = _dumps(
            {
                "apiVersion": kind.api_version,
                "kind": f"{kind.kind}List",
                "metadata": {"resourceVersion": str(self._last_rv)},
            }
        )
        return self._raw_json(head[:-1] + b',"items":[' + b",".join(self._selected(key, selector)) + b"]}")

    async def _watch_response(
        self, request: Any, key: ResourceKey, kind: _Kind, namespace: str | None, params: Mapping[str, str]
    ) -> aiohttp.web.StreamResponse:
        """A watch stream: the current objects as ``ADDED`` (no ``resourceVersion``) or the
        events after ``resourceVersion``, then live events, until ``timeoutSeconds``."""
        selector = self._selector(namespace, params)
        since_text = params.get("resourceVersion") or ""
        since = int(since_text) if since_text.isdigit() and since_text != "0" else None
        watcher = _Watcher(selector)
        # Registered and primed in one step of the loop: no event can fall in between.
        if since is None:
            for raw in self._selected(key, selector):
                watcher.queue.put_nowait(_event_line("ADDED", raw))
        elif since < self._history_floor[key]:
            gone = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": 410,
                "reason": "Expired",
                "message": f"too old resource version: {since}",
            }
            watcher.queue.put_nowait(_dumps({"type": "ERROR", "object": gone}) + b"\n")
            watcher.queue.put_nowait(b"")  # end of stream
        else:
            for event in self._history[key]:
                if event.rv > since and selector.matches(event.namespace, event.name, event.labels):
                    watcher.queue.put_nowait(event.line)
        self._watchers[key].add(watcher)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        timeout = float(params["timeoutSeconds"]) if (params.get("timeoutSeconds") or "").isdigit() else None
        try:
            await response.prepare(request._raw_request)
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(timeout):
                    while True:
                        line = await watcher.queue.get()
                        if not line:
                            break
                        # Whatever else is queued goes in the same write.
                        lines = [line]
                        while not watcher.queue.empty() and lines[-1]:
                            lines.append(watcher.queue.get_nowait())
                        await response.write(b"".join(lines))
                        if not lines[-1]:
                            break
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
        finally:
            self._watchers[key].discard(watcher)
        return response

    # --- writes --------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _put(self, key: ResourceKey, okey: ObjectKey, obj: dict[str, Any]) -> bytes:
        """Store an object and its JSON; the JSON."""
        raw = _dumps(obj)
        self.store[key][okey] = obj
        self._raw[key][okey] = raw
        return raw

    def _publish(self, key: ResourceKey, type_: str, obj: Mapping[str, Any], raw: bytes) -> None:
        """Queue one event (``raw``: the object's JSON) for every watcher that selects it; keep it
        for watches that resume."""
        meta = obj.get("metadata") or {}
        event = _Event(
            int(meta.get("resourceVersion") or self._last_rv),
            meta.get("namespace"),
            str(meta.get("name")),
            _labels(obj),
            _event_line(type_, raw),
        )
        history = self._history[key]
        if len(history) == history.maxlen:
            self._history_floor[key] = history[0].rv
        history.append(event)
        for watcher in self._watchers[key]:
            if watcher.selector.matches(event.namespace, event.name, event.labels):
                watcher.queue.put_nowait(event.line)

    def _create(self, request: Any, key: ResourceKey, kind: _Kind, namespace: str | None) -> bytes:
        data = request.data
        if not isinstance(data, dict):
            raise _ApiStatus(400, "BadRequest", "the body is not a JSON object")
        obj = dict(data)
        meta = dict(obj.get("metadata") or {})
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if not isinstance(name, str) or not name:
            raise _ApiStatus(422, "Invalid", "metadata.name is required")
        if kind.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if (namespace, name) in self.store[key]:
            raise _ApiStatus(409, "AlreadyExists", f'{key[2]} "{name}" already exists')
        meta.update(
            name=name,
            uid=str(uuid.uuid4()),
            creationTimestamp=_now(),
            generation=1,
            resourceVersion=self._next_rv(),
        )
        obj["metadata"] = meta
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        if kind.status_subresource:
            obj.pop("status", None)
        raw = self._put(key, (namespace, name), obj)
        self._publish(key, "ADDED", obj, raw)
        return raw

    def _update(
        self, request: Any, key: ResourceKey, kind: _Kind, okey: ObjectKey, current: dict[str, Any]
    ) -> bytes:
        patch = request.data
        if isinstance(patch, list):  # JSON patch: apply here, then go on as the equal merge patch
            try:
                merged = dict(kmock_dicts.patch_dict(current, patch))
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
                # As the real API server does for a failed "test" op (Kopf relies on it
                # for optimistic concurrency on resourceVersion).
                raise _ApiStatus(422, "Invalid", str(e)) from None
            patch = _merge_diff(current, merged)
        if not isinstance(patch, dict):
            raise _ApiStatus(400, "BadRequest", "the patch is neither a JSON object nor a JSON patch")
        patch = dict(patch)
        if request.subresource == "status":
            patch = {"status": patch.get("status")}
        elif kind.status_subresource:
            patch.pop("status", None)
        meta = dict(patch.get("metadata") or {})
        for fixed in ("uid", "creationTimestamp", "generation", "name", "namespace", "resourceVersion"):
            meta.pop(fixed, None)
        patch["metadata"] = meta
        new = _merge_patch(current, patch)
        if new == current:
            return self._raw[key][okey]  # nothing changed: no new version, no event (as the API server)
        old_meta = current.get("metadata") or {}
        new_meta = dict(new.get("metadata") or {})
        if (new.get("spec") or {}) != (current.get("spec") or {}):
            new_meta["generation"] = int(old_meta.get("generation") or 1) + 1
        new_meta["resourceVersion"] = self._next_rv()
        new["metadata"] = new_meta
        raw = self._put(key, okey, new)
        self._publish(key, "MODIFIED", new, raw)
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            self._remove(key, okey, new)
        return raw

    def _delete(self, key: ResourceKey, okey: ObjectKey, current: dict[str, Any]) -> bytes:
        meta = current.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return self._raw[key][okey]  # already being deleted
        if meta.get("finalizers"):
            new = dict(current)
            new["metadata"] = {
                **meta,
                "deletionTimestamp": _now(),
                "resourceVersion": self._next_rv(),
            }
            raw = self._put(key, okey, new)
            self._publish(key, "MODIFIED", new, raw)
            return raw
        return self._remove(key, okey, current)

    def _remove(self, key: ResourceKey, okey: ObjectKey, current: dict[str, Any]) -> bytes:
        del self.store[key][okey]
        del self._raw[key][okey]
        gone = dict(current)
        gone["metadata"] = {**(current.get("metadata") or {}), "resourceVersion": self._next_rv()}
        raw = _dumps(gone)
        self._publish(key, "DELETED", gone, raw)
        return raw


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
        em = self.emulator
        em.declare(
            "",
            "v1",
            "namespaces",
            kind="Namespace",
            singular="namespace",
            shortnames=("ns",),
            namespaced=False,
            status=False,
        )
        em.declare(
            "", "v1", "nodes", kind="Node", singular="node", shortnames=("no",), namespaced=False, status=True
        )
        em.declare(
            "", "v1", "pods", kind="Pod", singular="pod", shortnames=("po",), namespaced=True, status=True
        )
        em.declare(
            "",
            "v1",
            "events",
            kind="Event",
            singular="event",
            shortnames=("ev",),
            namespaced=True,
            status=False,
        )
        em.declare(
            c.GROUP,
            c.VERSION,
            c.PROFILE_PLURAL,
            kind=c.PROFILE_KIND,
            singular=c.PROFILE_SINGULAR,
            shortnames=c.PROFILE_SHORT_NAMES,
            namespaced=True,
            status=True,
        )
        em.declare(
            c.GROUP,
            c.VERSION,
            c.NODE_STATUS_PLURAL,
            kind=c.NODE_STATUS_KIND,
            singular=c.NODE_STATUS_SINGULAR,
            shortnames=c.NODE_STATUS_SHORT_NAMES,
            namespaced=False,
            status=False,
        )
        em.declare(
            c.GROUP,
            c.VERSION,
            policy.POLICY_PLURAL,
            kind=policy.POLICY_KIND,
            singular=policy.POLICY_SINGULAR,
            shortnames=policy.POLICY_SHORT_NAMES,
            namespaced=False,
            status=False,
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
        self.emulator.put_object(
            "",
            "v1",
            "namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": _now()},
            },
        )

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
