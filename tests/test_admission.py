"""The validating webhook: AdmissionReviews over HTTPS to the controller's real webhook server.

The server is configured with :func:`seccomp_operator.admission.configure_webhooks` (certificate
files made with ``openssl``), requests go through Kopf's own admission machinery
(``serve_admission_request``, as ``kopf.operator`` wires it) to the handler registered on the
controller's registry, and the responses are read as the API server reads them
(:mod:`tests.webhooks`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from seccomp_operator import constants as c
from seccomp_operator import controller_handlers
from seccomp_operator.webhook_server import ReloadingWebhookServer
from tests.conftest import CASES
from tests.webhooks import PROFILE_RESOURCE, admission_registered, controller_memo, make_certificate, review
from tests.webhooks import webhook_client as _webhook_client

RESOURCE = PROFILE_RESOURCE


def case_docs(prefix: str) -> dict[str, dict[str, Any]]:
    (folder,) = CASES.glob(f"{prefix}-*")
    docs = yaml.safe_load_all((folder / "input.cr.yaml").read_text())
    return {d["metadata"]["name"]: d for d in docs if d}


@pytest.fixture
def admission_module() -> Iterator[Any]:
    """:mod:`seccomp_operator.admission` with its handler on the controller's registry (for this test)."""
    with admission_registered() as module:
        yield module


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl req``)."""
    return make_certificate(tmp_path_factory.mktemp("tls"), "tls")


@contextlib.asynccontextmanager
async def webhook(admission: Any, certificate: tuple[Path, Path], memo: Any) -> AsyncIterator[Any]:
    """Serve the controller registry's webhooks over HTTPS; yields ``post(review) -> response``."""
    async with _webhook_client(certificate, memo) as post:
        yield functools.partial(post, admission.HANDLER_ID)


async def test_invalid_profile_is_refused_with_field_paths(
    admission_module: Any, certificate: tuple[Path, Path]
) -> None:
    bad = case_docs("004")["bad-errno"]
    async with webhook(admission_module, certificate, controller_memo()) as post:
        answer = await post(review("CREATE", bad))
    assert answer["allowed"] is False
    status = answer["status"]
    assert status["code"] == 422
    message = status["message"]
    assert message.startswith("SeccompProfile is invalid (3 errors): ")
    assert 'spec.syscalls[0].errnoRet: got the errno name "ENOSYS"' in message and "write 38" in message
    assert "spec.syscalls[1].errnoRet: errnoRet is only meaningful with SCMP_ACT_ERRNO" in message
    assert "spec.syscalls[2].errnoRet: 65537 does not fit the 16-bit SECCOMP_RET_DATA field" in message


async def test_warning_only_profile_is_admitted_with_warnings(
    admission_module: Any, certificate: tuple[Path, Path]
) -> None:
    docs = case_docs("005")
    async with webhook(admission_module, certificate, controller_memo()) as post:
        eperm = await post(review("CREATE", docs["web-eperm"]))
        enosys = await post(review("CREATE", docs["web-enosys"]))
        refused = await post(review("CREATE", docs["bad-default-errno"]))
    assert eperm["allowed"] is True and "status" not in eperm
    (warning,) = eperm["warnings"]
    assert warning.startswith("WARNING spec.defaultAction: default errno is EPERM")
    assert len(warning) <= admission_module.WARNING_MAX_CHARS
    assert enosys["allowed"] is True and "warnings" not in enosys
    assert refused["allowed"] is False and "spec.defaultErrnoRet" in refused["status"]["message"]


async def test_bases_from_the_controller(admission_module: Any, certificate: tuple[Path, Path]) -> None:
    docs = case_docs("010")
    app, base = docs["agent-app"], docs["runc-base-old"]
    conflicting = {
        **base,
        "spec": {**base["spec"], "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["socket"]}]},
    }
    async with webhook(admission_module, certificate, controller_memo()) as post:
        missing = await post(review("CREATE", app))
    async with webhook(admission_module, certificate, controller_memo(base)) as post:
        present = await post(review("CREATE", app))
    async with webhook(admission_module, certificate, controller_memo(conflicting)) as post:
        conflict = await post(review("CREATE", app))
    # a missing base is no reason to refuse: the profile stays Pending
    assert missing["allowed"] is True
    assert any("runc-base-old" in w and "stays Pending" in w for w in missing["warnings"])
    assert present["allowed"] is True
    assert not any("runc-base-old" in w for w in present["warnings"])
    # with the base, socket is allowed by the app and denied by the base: libseccomp would keep one silently
    assert conflict["allowed"] is False
    assert (
        '"socket" is already in spec.baseProfileName[runc-base-old].syscalls[0]'
        in conflict["status"]["message"]
    )


async def test_metadata_only_updates_and_deletion_pass(
    admission_module: Any, certificate: tuple[Path, Path]
) -> None:
    """The controller can always change its finalizer, even on a profile stored without the webhook."""
    bad = case_docs("004")["bad-errno"]
    with_finalizer = {**bad, "metadata": {**bad["metadata"], "finalizers": [c.FINALIZER]}}
    changed = {**with_finalizer, "spec": {**bad["spec"], "defaultAction": "SCMP_ACT_ERRNO"}}
    async with webhook(admission_module, certificate, controller_memo()) as post:
        finalizer = await post(review("UPDATE", with_finalizer, old=bad))
        spec_change = await post(review("UPDATE", changed, old=with_finalizer))
    assert finalizer["allowed"] is True
    assert spec_change["allowed"] is False and spec_change["status"]["code"] == 422


def test_handler_registered_on_the_controller_registry(admission_module: Any) -> None:
    (handler,) = [
        h for h in controller_handlers.registry._webhooks.get_all_handlers() if h.id == "validate-profile"
    ]
    assert set(handler.operations or ()) == {"CREATE", "UPDATE"}
    assert handler.selector is not None and handler.selector.select([RESOURCE]) == {RESOURCE}


def test_configure_webhooks(admission_module: Any, tmp_path: Path) -> None:
    settings = kopf.OperatorSettings()
    admission_module.configure_webhooks(settings, mode="off")
    assert settings.admission.server is not None and settings.admission.managed is None
    with pytest.raises(ValueError, match="certfile/pkeyfile, self_signed=True or insecure=True"):
        admission_module.configure_webhooks(kopf.OperatorSettings(), host="svc")
    with pytest.raises(ValueError, match="both certfile and pkeyfile"):
        admission_module.configure_webhooks(kopf.OperatorSettings(), certfile=str(tmp_path / "c"))
    served = kopf.OperatorSettings()
    admission_module.configure_webhooks(served, host="webhook.ns.svc", port=8443, self_signed=True)
    assert isinstance(served.admission.server, kopf.WebhookServer)
    assert served.admission.server.host == "webhook.ns.svc" and served.admission.server.port == 8443
    # The static configuration of manifests/webhook/ is used; Kopf manages none.
    assert served.admission.managed is None
    files = kopf.OperatorSettings()
    admission_module.configure_webhooks(
        files, host="svc", certfile="/tls/tls.crt", pkeyfile="/tls/tls.key", reload_interval=2.5
    )
    server = files.admission.server
    assert isinstance(server, ReloadingWebhookServer) and files.admission.managed is None
    assert (server.certfile, server.pkeyfile, server.reload_interval) == ("/tls/tls.crt", "/tls/tls.key", 2.5)
    assert server.port == c.WEBHOOK_PORT


def test_kopf_never_manages_the_webhook_configuration(admission_module: Any) -> None:
    """Kopf's managed configuration would send every namespace's pods to the strict pod webhook."""
    settings = kopf.OperatorSettings()
    with pytest.raises(ValueError, match=r"namespaceSelectors on seccomp-operator\.dev/pod-admission"):
        admission_module.configure_webhooks(settings, self_signed=True, managed="seccomp-operator.dev")


def test_warning_texts_respect_kubernetes_limits(admission_module: Any) -> None:
    from seccomp_operator.findings import Finding, Severity

    many = [Finding(Severity.WARNING, f"spec.syscalls[{i}]", "x" * 400) for i in range(40)]
    texts = admission_module.warning_texts(many)
    assert all(len(t) <= 256 for t in texts)
    assert sum(len(t.encode()) for t in texts) <= 4096
    assert texts[-1].startswith("and ") and "more warnings" in texts[-1]
