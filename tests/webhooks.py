"""The controller's webhooks as the API server meets them: real HTTPS AdmissionReviews.

:func:`serving` runs the webhook server that :func:`seccomp_operator.admission.configure_webhooks`
puts into Kopf's settings, with Kopf's own admission machinery (``serve_admission_request``,
wired as ``kopf.operator`` wires it) behind it and the controller's registry, on which importing
:mod:`seccomp_operator.admission` put its handlers.  Requests are AdmissionReviews
(``admission.k8s.io/v1``) posted over TLS; answers are read as the API server reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import aiohttp
import kopf
import pytest
from kopf._cogs.structs.references import Insights, Resource
from kopf._core.engines.admission import serve_admission_request
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.reactor.inventory import ResourceMemories

from seccomp_operator import admission, controller_handlers
from seccomp_operator import constants as c
from seccomp_operator.profiles import ProfileSnapshot

_VERBS = frozenset({"create", "update", "get", "list", "watch", "patch", "delete"})
PROFILE_RESOURCE = Resource(
    group=c.GROUP,
    version=c.VERSION,
    plural=c.PROFILE_PLURAL,
    kind=c.PROFILE_KIND,
    singular=c.PROFILE_SINGULAR,
    namespaced=True,
    verbs=_VERBS,
)
POD_RESOURCE = Resource(
    group="", version="v1", plural="pods", kind="Pod", singular="pod", namespaced=True, verbs=_VERBS
)


@contextlib.contextmanager
def admission_registered() -> Iterator[ModuleType]:
    """:mod:`seccomp_operator.admission`, asserting its handlers are on the controller's registry."""
    ids = {h.id for h in controller_handlers.registry._webhooks.get_all_handlers()}
    assert {admission.HANDLER_ID, *admission.POD_HANDLER_IDS.values()} <= ids
    yield admission


def make_certificate(folder: Path, name: str, *, common_name: str = "127.0.0.1") -> tuple[Path, Path]:
    """``<folder>/<name>.crt`` and ``.key``: a self-signed P-256 certificate for 127.0.0.1 (``openssl req``).

    Skips the test when ``openssl`` is not installed.
    """
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the webhook's test certificates")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={common_name}",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def review(
    operation: str,
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    resource: Resource = PROFILE_RESOURCE,
    subresource: str | None = None,
    namespace: str = "demo",
) -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview for ``obj`` as the API server sends it."""
    meta = obj.get("metadata") or {}
    gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    gvr = {"group": resource.group, "version": resource.version, "resource": resource.plural}
    request: dict[str, Any] = {
        "uid": f"uid-{meta.get('name', 'unnamed')}-{operation}-{subresource or ''}",
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", namespace),
        "operation": operation,
        "userInfo": {"username": "alice", "uid": "u1", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if subresource is not None:
        request["subResource"] = subresource
        request["requestSubResource"] = subresource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@dataclass
class Served:
    """A running webhook server: its client config (``url``, ``caBundle``) and the server object."""

    config: Mapping[str, Any]
    server: Any
    configs: asyncio.Queue[Any]

    @property
    def port(self) -> int:
        """The port the server listens on (from the client config's URL)."""
        return int(str(self.config["url"]).rsplit(":", 1)[1].split("/")[0])


@contextlib.asynccontextmanager
async def serving(
    settings: kopf.OperatorSettings,
    memo: Any,
    resources: Iterable[Resource] = (PROFILE_RESOURCE, POD_RESOURCE),
) -> AsyncIterator[Served]:
    """Run ``settings.admission.server`` with Kopf's admission machinery and the controller's registry."""
    insights = Insights()
    insights.webhook_resources.update(resources)
    insights.ready_resources.set()
    fn = functools.partial(
        serve_admission_request,
        settings=settings,
        registry=controller_handlers.registry,
        insights=insights,
        memories=ResourceMemories(),
        memobase=memo,
        indices=OperatorIndexers().indices,
    )
    configs: asyncio.Queue[Any] = asyncio.Queue()
    server = settings.admission.server
    assert server is not None

    async def serve() -> None:
        async for config in server(fn):
            await configs.put(config)

    task = asyncio.create_task(serve())
    try:
        getter = asyncio.ensure_future(configs.get())
        done, _ = await asyncio.wait({getter, task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            getter.cancel()
            task.result()  # the server failed to start: raise its error
        assert getter in done, "the webhook server did not start within 30 s"
        yield Served(getter.result(), server, configs)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def webhook_client(
    certificate: tuple[Path, Path], memo: Any, *, settings: kopf.OperatorSettings | None = None
) -> AsyncIterator[Any]:
    """Serve the controller's webhooks with ``certificate``; yields ``post(handler_id, review)``."""
    cert, key = certificate
    if settings is None:
        settings = kopf.OperatorSettings()
        admission.configure_webhooks(
            settings, host="127.0.0.1", addr="127.0.0.1", port=0, certfile=str(cert), pkeyfile=str(key)
        )
    async with serving(settings, memo) as served:
        assert served.config["url"].startswith("https://127.0.0.1:")
        assert served.config["caBundle"]  # the certificate, for a webhook configuration's caBundle
        context = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as session:

            async def post(handler_id: str, body: dict[str, Any]) -> dict[str, Any]:
                url = f"{served.config['url'].rstrip('/')}/{handler_id}"
                async with session.post(url, json=body, ssl=context) as response:
                    assert response.status == 200, await response.text()
                    answer: dict[str, Any] = await response.json()
                    result: dict[str, Any] = answer["response"]
                    assert result["uid"] == body["request"]["uid"]
                    return result

            yield post


def tracked_profile(doc: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Any:
    """A stand-in for the controller's tracked profile: ``.snap`` and ``.status``."""
    meta = doc["metadata"]
    snap = ProfileSnapshot(
        namespace=meta["namespace"],
        name=meta["name"],
        spec=doc.get("spec") or {},
        deleting=bool(meta.get("deletionTimestamp")),
        generation=meta.get("generation"),
    )
    return SimpleNamespace(snap=snap, status=dict(status if status is not None else doc.get("status") or {}))


def controller_memo(*docs: Mapping[str, Any]) -> Any:
    """A stand-in for the controller's memo: ``memo.core.profiles`` by ``<namespace>/<name>``."""
    profiles = {f"{d['metadata']['namespace']}/{d['metadata']['name']}": tracked_profile(d) for d in docs}
    return SimpleNamespace(core=SimpleNamespace(profiles=profiles))
