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

The pod check (opt-in per namespace): two more handlers, one per mode, on v1 pods at
``/validate-pod-warn`` and ``/validate-pod-strict``.  The namespace label
``seccomp-operator.dev/pod-admission: warn|strict`` selects, through the namespaceSelector of
each webhook in ``manifests/webhook/``, which of them the API server calls, so the handlers
never look a namespace up.  They judge the pod with :func:`.pod_admission.check_pod` against
the controller's snapshots: warn admits with admission warnings, strict refuses (403) naming
every container, field path, profile and why.  Both webhooks have ``failurePolicy: Ignore``:
the check guards availability of profiles, so a controller that is down must not stop every
pod of the opted-in namespaces from starting.

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
from . import controller_handlers, pod_admission, policy
from .findings import BaseProfileMissing, Finding, ProfileError, Severity, errors, summary
from .profiles import plain
from .render import render_mapping
from .validate import check_mapping
from .webhook_server import ReloadingWebhookServer

logger = logging.getLogger("seccomp_operator.admission")

#: Handler id: the webhook path is ``/<id>``.
HANDLER_ID: Final = c.WEBHOOK_PATH_PROFILE
#: Handler ids of the pod check, one per mode (the namespace label selects which one is called).
POD_HANDLER_IDS: Final = {
    c.POD_ADMISSION_WARN: c.WEBHOOK_PATH_POD_WARN,
    c.POD_ADMISSION_STRICT: c.WEBHOOK_PATH_POD_STRICT,
}
#: Kubernetes' admission warning limits (see :mod:`.pod_admission`).
WARNING_MAX_CHARS: Final = pod_admission.WARNING_MAX_CHARS
WARNINGS_MAX_BYTES: Final = pod_admission.WARNINGS_MAX_BYTES
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
    return pod_admission.fit_warnings(
        [str(f) for f in found], more="and {n} more warnings (run seccomp-operator lint for all)"
    )


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


def _profile_states(memo: Any) -> pod_admission.Lookup | None:
    """A pod-check lookup over the controller's snapshots, or None when there are none.

    ``memo.core.profiles`` maps ``<namespace>/<name>`` to the controller's tracked profile:
    ``.snap`` (:class:`.profiles.ProfileSnapshot`: generation, deletion) and ``.status`` (the
    status it last wrote or saw on the object).
    """
    profiles = getattr(getattr(memo, "core", None), "profiles", None)
    if not isinstance(profiles, Mapping):
        return None

    def lookup(key: str) -> pod_admission.ProfileState | None:
        tracked = profiles.get(key)
        if tracked is None:
            return None
        snap = getattr(tracked, "snap", None)
        status = getattr(tracked, "status", None)
        return pod_admission.state_from_status(
            status if isinstance(status, Mapping) else None,
            generation=getattr(snap, "generation", None),
            deleting=bool(getattr(snap, "deleting", False)),
        )

    return lookup


def check_pod_admission(
    mode: str,
    *,
    pod: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    operation: str | None,
    subresource: str | None,
    memo: Any,
    warnings: list[str],
) -> None:
    """The pod check for one AdmissionReview, in ``mode`` (``warn`` or ``strict``).

    Checks a pod's ``CREATE`` and the ``UPDATE`` of ``pods/ephemeralcontainers`` (only the new
    ephemeral containers); anything else passes untouched.  Problems become admission warnings
    in warn mode.  Without the controller's snapshots, or if the check itself fails, the pod is
    admitted with a warning saying it was not checked (as ``failurePolicy: Ignore`` does when the
    controller is down).

    Raises:
        kopf.AdmissionError: strict mode and at least one problem (HTTP 403, every problem named).
    """
    if operation == "CREATE" and subresource is None:
        before = None
    elif operation == "UPDATE" and subresource == c.EPHEMERAL_CONTAINERS_SUBRESOURCE and old is not None:
        before = old
    else:
        return
    lookup = _profile_states(memo)
    if lookup is None:
        warnings.append(
            "seccomp-operator could not check the pod's seccomp profiles: the controller is starting"
        )
        return
    try:
        problems = pod_admission.check_pod(
            plain(pod), lookup, old=plain(before) if before is not None else None
        )
    except Exception:  # a bug here must not block pods: fail open, as failurePolicy Ignore does
        logger.exception("pod admission check failed")
        warnings.append("seccomp-operator could not check the pod's seccomp profiles")
        return
    if not problems:
        return
    if mode == c.POD_ADMISSION_STRICT:
        raise kopf.AdmissionError(pod_admission.refusal_message(problems), code=403)
    warnings.extend(pod_admission.warning_texts(problems))


def _register_pod_check(mode: str) -> None:
    """Put the pod check of ``mode`` on the controller's registry, at ``/<POD_HANDLER_IDS[mode]>``.

    ``subresource="*"`` lets one handler (one URL) take both the pod and its
    ``ephemeralcontainers`` subresource; the webhook configuration's rules decide what is sent.
    The handler is a coroutine: the check is a few dictionary lookups, so it runs on the event
    loop instead of taking a thread of Kopf's executor for every pod.
    """

    @kopf.on.validate(
        "",
        "v1",
        "pods",
        id=POD_HANDLER_IDS[mode],
        operations=["CREATE", "UPDATE"],
        subresource="*",
        ignore_failures=True,
        registry=controller_handlers.registry,
    )
    async def validate_pod(
        *,
        body: kopf.Body,
        old: kopf.Body | None = None,
        operation: str | None = None,
        subresource: str | None = None,
        memo: Any,
        warnings: list[str],
        **_: Any,
    ) -> None:
        check_pod_admission(
            mode,
            pod=body,
            old=old,
            operation=operation,
            subresource=subresource,
            memo=memo,
            warnings=warnings,
        )


for _mode in POD_HANDLER_IDS:
    _register_pod_check(_mode)


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
    port: int = c.WEBHOOK_PORT,
    addr: str | None = None,
    path: str | None = None,
    certfile: str | None = None,
    pkeyfile: str | None = None,
    cafile: str | None = None,
    self_signed: bool = False,
    insecure: bool = False,
    reload_interval: float = c.WEBHOOK_RELOAD_SECONDS,
    managed: str | None = None,
) -> None:
    """Set ``settings.admission`` for the controller; call it from the start-up handler.

    Kopf never manages the ValidatingWebhookConfiguration (``settings.admission.managed`` is
    None): the one in ``manifests/webhook/`` is used.  Kopf's managed configuration has one
    webhook per handler with an objectSelector only, so the two pod webhooks would apply to
    every pod of every namespace (strict mode everywhere) instead of to the namespaces labelled
    ``seccomp-operator.dev/pod-admission``; and it needs RBAC to write webhook configurations.

    Args:
        settings: the operator settings Kopf passes to ``on.startup`` handlers.
        mode: ``"serve"`` runs the HTTPS endpoint; ``"off"`` installs a server that never
            serves (Kopf refuses to run admission handlers without any server), for the demo
            and tests.
        host: the name the API server reaches the webhook at (the Service DNS name, e.g.
            ``seccomp-operator-webhook.seccomp-operator.svc``); only logged and put in the
            client config Kopf is given, since the configuration is static.
        port: the port to listen on (0: any free port).
        addr: the address to listen on; None means all interfaces.
        path: a URL path prefix; the handlers answer at ``<path>/<handler id>``.
        certfile, pkeyfile: the server certificate and key (e.g. a cert-manager Secret mounted
            into the pod); reloaded in place when they change, every ``reload_interval``
            seconds (:class:`.webhook_server.ReloadingWebhookServer`).
        cafile: the CA bundle for the client config; default: ``certfile``.
        self_signed: without ``certfile``, let Kopf generate a self-signed certificate for
            ``host`` (needs the ``certbuilder`` package, Kopf's ``dev`` extra).
        insecure: plain HTTP (only for local debugging; the API server requires HTTPS).
        reload_interval: seconds between two checks of ``certfile``/``pkeyfile``.
        managed: must stay None (see above); kept so that an old caller gets a clear error.

    Raises:
        ValueError: ``mode="serve"`` without a certificate, ``self_signed`` or ``insecure``;
            only one of ``certfile``/``pkeyfile``; ``managed`` given.
    """
    if managed is not None:
        raise ValueError(
            "Kopf cannot manage the webhook configuration: the pod webhooks need the "
            f"namespaceSelectors on {c.POD_ADMISSION_LABEL}; apply manifests/webhook/ instead"
        )
    settings.admission.managed = None
    if mode == "off":
        settings.admission.server = _NoWebhookServer()
        return
    if (certfile is None) != (pkeyfile is None):
        raise ValueError("give both certfile and pkeyfile, or neither")
    if certfile is None and not (self_signed or insecure):
        raise ValueError("the webhook needs certfile/pkeyfile, self_signed=True or insecure=True")
    if certfile is not None and pkeyfile is not None and not insecure:
        settings.admission.server = ReloadingWebhookServer(
            addr=addr,
            port=port,
            host=host,
            path=path,
            certfile=certfile,
            pkeyfile=pkeyfile,
            cafile=cafile,
            reload_interval=reload_interval,
        )
        return
    settings.admission.server = kopf.WebhookServer(
        addr=addr, port=port, host=host, path=path, cafile=cafile, insecure=insecure
    )
