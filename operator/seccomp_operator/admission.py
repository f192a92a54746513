"""Validating admission webhook for SeccompProfiles (Kopf ``on.validate``), run by the controller.

A profile with errors is refused at ``kubectl apply`` time with every field-level reason
(HTTP 422 in the AdmissionReview status); warnings come back as Kubernetes admission
warnings, which ``kubectl`` prints.  The checks are the same as everywhere else:
:func:`.validate.check_mapping` for the spec, then :func:`.render.render_mapping` for what
needs the whole profile (libseccomp compile, the 4096-instruction BPF limit, conflicts with
the rules of base profiles).

Base profiles come from the controller's snapshots (``memo.core.profiles``, keyed
``<namespace>/<name>``) when the controller runs; a base that does not exist (yet) is not a
reason to refuse: the profile stays Pending until it exists (a warning says so).  Without
the controller's snapshots, base profiles are not checked.

What is let through unchecked: updates that leave ``spec`` unchanged (finalizers,
labels, annotations: the controller must always be able to remove its finalizer, even from
a profile that was stored while the webhook was down) and objects being deleted.  If the
webhook itself fails unexpectedly, the profile is admitted with a warning and the
controller marks it Invalid later (fail open: the CRD's CEL rules still apply).

Wiring (the lead's part): ``controller_handlers`` imports this module so that the handler
lands on its registry, and its start-up handler calls :func:`configure_webhooks`.  Kopf
refuses to start an operator whose registry has admission handlers but no
``settings.admission.server``; :func:`configure_webhooks` with ``mode="off"`` installs a
server that never serves, for runs without a webhook (the in-process demo, tests).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, Literal

import kopf

from . import constants as c
from . import controller_handlers, policy
from .findings import BaseProfileMissing, Finding, ProfileError, Severity, errors, summary
from .profiles import plain
from .render import render_mapping
from .validate import check_mapping

logger = logging.getLogger("seccomp_operator.admission")

#: Handler id: the webhook path is ``/<id>`` and Kopf's managed webhook is named after it.
HANDLER_ID: Final = "validate-profile"
#: Default name of the ValidatingWebhookConfiguration Kopf manages (``settings.admission.managed``).
WEBHOOK_CONFIGURATION: Final = f"{c.GROUP}"
#: Kubernetes truncates admission warnings longer than 256 characters and keeps at most
#: 4096 bytes of them (``k8s.io/apiserver`` admission warning limits).
WARNING_MAX_CHARS: Final = 256
WARNINGS_MAX_BYTES: Final = 4096
#: Most errors named in one refusal message (the rest are counted).
MAX_ERRORS_SHOWN: Final = 20


def _lookup_from_memo(memo: Any, namespace: str | None) -> Any:
    """A ``lookup_base`` over the controller's snapshots, or None when there are none."""
    core = getattr(memo, "core", None)
    profiles = getattr(core, "profiles", None)
    if not isinstance(profiles, Mapping) or namespace is None:
        return None

    def lookup(name: str) -> Mapping[str, Any] | None:
        tracked = profiles.get(f"{namespace}/{name}")
        snap = getattr(tracked, "snap", tracked)
        spec = getattr(snap, "spec", None)
        return spec if isinstance(spec, Mapping) else None

    return lookup


def check_for_admission(
    spec: object, *, name: str | None = None, namespace: str | None = None, memo: Any = None
) -> tuple[list[Finding], list[Finding]]:
    """``(errors, warnings)`` for a SeccompProfile ``spec`` as the webhook judges it.

    Errors refuse the object; warnings are returned to the client.  Infos are dropped
    (``seccomp-operator lint`` shows them).  A missing base profile is a warning.  Never
    raises for bad input.
    """
    _, found = check_mapping(spec)
    if not errors(found):
        lookup = _lookup_from_memo(memo, namespace)
        base = spec.get("baseProfileName") if isinstance(spec, Mapping) else None
        try:
            if base and lookup is None:
                found.append(
                    Finding(
                        Severity.WARNING,
                        "spec.baseProfileName",
                        "the base profile was not checked at admission; the controller checks the "
                        "profile with its base",
                    )
                )
            else:
                found = list(render_mapping(spec, lookup_base=lookup, name=name).findings)
        except BaseProfileMissing as e:
            missing = e.findings[0]
            found.append(
                Finding(
                    Severity.WARNING,
                    missing.path,
                    f"{missing.message}; the profile stays Pending until it exists",
                    missing.hint,
                )
            )
        except ProfileError as e:
            found = list(e.findings)
    index = getattr(getattr(memo, "core", None), "policies", None)
    if isinstance(index, policy.PolicyIndex) and namespace:
        found.extend(index.check(spec, namespace, lookup_base=_lookup_from_memo(memo, namespace)))
    bad = errors(found)
    return bad, [f for f in found if f.severity is Severity.WARNING]


def refusal_message(found: Sequence[Finding]) -> str:
    """The AdmissionError message: every error (up to :data:`MAX_ERRORS_SHOWN`), each with its field path."""
    head = f"SeccompProfile is invalid ({len(found)} error{'s' if len(found) != 1 else ''}): "
    return head + summary(found, limit=MAX_ERRORS_SHOWN)


def warning_texts(found: Sequence[Finding]) -> list[str]:
    """Warnings as Kubernetes admission warnings: each shortened to 256 characters, 4096 bytes in all."""
    out: list[str] = []
    used = 0
    for i, f in enumerate(found):
        text = str(f)
        if len(text) > WARNING_MAX_CHARS:
            text = text[: WARNING_MAX_CHARS - 3] + "..."
        rest = len(found) - i
        tail = f"and {rest} more warnings (run seccomp-operator lint for all)"
        if used + len(text.encode()) + len(tail) + 2 > WARNINGS_MAX_BYTES and rest > 1:
            out.append(tail)
            break
        out.append(text)
        used += len(text.encode())
    return out


@kopf.on.validate(
    c.GROUP,
    c.VERSION,
    c.PROFILE_PLURAL,
    id=HANDLER_ID,
    operations=["CREATE", "UPDATE"],
    registry=controller_handlers.registry,
)
def validate_profile(
    *,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    memo: Any,
    warnings: list[str],
    **kwargs: Any,
) -> None:
    """Refuse a SeccompProfile with errors (422, field-level reasons); return its warnings.

    Raises:
        kopf.AdmissionError: the profile has errors.
    """
    old = kwargs.get("old")
    if kwargs.get("operation") == "UPDATE" and old is not None and plain(old.get("spec")) == plain(spec):
        return  # metadata-only change (finalizers, labels): never block it
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return
    try:
        bad, warned = check_for_admission(plain(spec), name=name, namespace=namespace, memo=memo)
    except Exception:  # a bug here must not block the API: fail open, the controller checks again
        logger.exception("admission check of %s/%s failed", namespace, name)
        warnings.append("seccomp-operator could not check this profile at admission; see its status")
        return
    warnings.extend(warning_texts(warned))
    if bad:
        raise kopf.AdmissionError(refusal_message(bad), code=422)


class _NoWebhookServer:
    """A webhook "server" that never serves: for runs without admission (demo, tests)."""

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        import asyncio

        await asyncio.Event().wait()
        yield  # pragma: no cover - never reached


def configure_webhooks(
    settings: kopf.OperatorSettings,
    *,
    mode: Literal["off", "serve"] = "serve",
    host: str | None = None,
    port: int = 9443,
    addr: str | None = None,
    path: str | None = None,
    certfile: str | None = None,
    pkeyfile: str | None = None,
    cafile: str | None = None,
    self_signed: bool = False,
    insecure: bool = False,
    managed: str | None = WEBHOOK_CONFIGURATION,
) -> None:
    """Set ``settings.admission`` for the controller; call it from the start-up handler.

    Args:
        settings: the operator settings Kopf passes to ``on.startup`` handlers.
        mode: ``"serve"`` runs the HTTPS endpoint; ``"off"`` installs a server that never
            serves (Kopf refuses to run admission handlers without any server), for the demo
            and tests.
        host: the name the API server reaches the webhook at (the Service DNS name, e.g.
            ``seccomp-operator-webhook.seccomp-operator.svc``); it goes into the webhook URL.
        port: the port to listen on (and in the URL).
        addr: the address to listen on; None means all interfaces.
        path: a URL path prefix; the handler answers at ``<path>/validate-profile``.
        certfile, pkeyfile: the server certificate and key (e.g. a cert-manager Secret mounted
            into the pod); Kopf re-reads them when they change.
        cafile: the CA bundle for the webhook configuration's ``caBundle``; default: ``certfile``.
        self_signed: without ``certfile``, let Kopf generate a self-signed certificate for
            ``host`` (needs the ``certbuilder`` package, Kopf's ``dev`` extra).
        insecure: plain HTTP (only for local debugging; the API server requires HTTPS).
        managed: name of the ValidatingWebhookConfiguration Kopf creates and keeps pointing
            at this server (needs RBAC to get/create/patch
            ``validatingwebhookconfigurations``); None when the manifests ship it instead.

    Raises:
        ValueError: ``mode="serve"`` without a certificate, ``self_signed`` or ``insecure``,
            or only one of ``certfile``/``pkeyfile``.
    """
    if mode == "off":
        settings.admission.server = _NoWebhookServer()
        settings.admission.managed = None
        return
    if (certfile is None) != (pkeyfile is None):
        raise ValueError("give both certfile and pkeyfile, or neither")
    if certfile is None and not (self_signed or insecure):
        raise ValueError("the webhook needs certfile/pkeyfile, self_signed=True or insecure=True")
    settings.admission.server = kopf.WebhookServer(
        addr=addr,
        port=port,
        host=host,
        path=path,
        certfile=certfile,
        pkeyfile=pkeyfile,
        cafile=cafile,
        insecure=insecure,
    )
    settings.admission.managed = managed
