"""The pod check: does a pod reference seccomp-operator profiles that exist and are Ready?

Pure functions (no kopf, no network): the webhook handlers in :mod:`.admission` feed them the
pod from the AdmissionReview and a lookup over the controller's snapshots.

What counts: a ``securityContext.seccompProfile`` of type ``Localhost`` whose
``localhostProfile`` lies in our managed directory (``seccomp-operator/...``, compared after
path normalisation, as the kubelet would open it), in one of the four places
:func:`.podrefs.localhost_references` reads: the pod-level ``spec.securityContext``,
``spec.containers[]``, ``spec.initContainers[]``, ``spec.ephemeralContainers[]``.  The legacy
seccomp annotations are not checked (the kubelet ignores them on the supported Kubernetes
versions).  A profile in another namespace than the pod's is fine: the path names its namespace.

Each such reference is a problem when

- the path has not the shape our status publishes (``seccomp-operator/<ns>/<name>.json``):
  no profile can ever be written there (:data:`~.constants.POD_PROBLEM_MALFORMED`);
- the SeccompProfile does not exist (:data:`~.constants.POD_PROBLEM_MISSING`);
- it exists but is not Ready: its status's ``Ready`` condition is not ``True`` for its current
  generation, e.g. still rolling out, Disabled, Invalid or being deleted
  (:data:`~.constants.POD_PROBLEM_NOT_READY`), named with its phase and ready-node count.

On ``CREATE`` every reference is checked: the pod-level profile too, since the kubelet applies
it to the pod sandbox even when every container sets its own.  When ephemeral containers are
added (``UPDATE`` of ``pods/ephemeralcontainers``, ``kubectl debug``), only the new ephemeral
containers are checked, plus the pod-level profile for each new one that sets no
``seccompProfile`` of its own (it inherits the pod's).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from . import constants as c
from . import podrefs

#: Kubernetes truncates admission warnings longer than 256 characters and keeps at most
#: 4096 bytes of them (``k8s.io/apiserver`` admission warning limits).
WARNING_MAX_CHARS: Final = 256
WARNINGS_MAX_BYTES: Final = 4096
#: Most problems named in one refusal message (the rest are counted).
MAX_PROBLEMS_SHOWN: Final = 20

_PLACE = re.compile(r"^(containers|initContainers|ephemeralContainers)\[(\d+)\]$")
_POD_PATH: Final = "spec.securityContext.seccompProfile.localhostProfile"
_KIND_WORD: Final = {
    "containers": "container",
    "initContainers": "init container",
    "ephemeralContainers": "ephemeral container",
}


@dataclass(frozen=True, slots=True)
class ProfileState:
    """What the pod check needs to know of an existing SeccompProfile.

    Attributes:
        ready: its ``Ready`` condition is ``True`` for its current generation.
        phase: ``status.phase`` (``Installed``, ``Progressing``, ...); None before any status.
        ready_nodes: ``status.ready``, ``"<installed>/<desired>"`` nodes; None before any status
            and for a Disabled or deleted profile (whose ``status.ready`` counts removals).
        reason: the ``Ready`` condition's reason, or why the status does not count (stale).
    """

    ready: bool
    phase: str | None = None
    ready_nodes: str | None = None
    reason: str | None = None

    def describe(self) -> str:
        """``"phase Progressing, ready on 2/3 nodes, reason NodesNotInstalled"``: the known parts."""
        parts = []
        if self.phase:
            parts.append(f"phase {self.phase}")
        if self.ready_nodes:
            parts.append(f"ready on {self.ready_nodes} nodes")
        if self.reason:
            parts.append(f"reason {self.reason}")
        return ", ".join(parts) or "no status yet"


#: ``<namespace>/<name>`` -> the profile's state, or None when no such profile exists.
Lookup = Callable[[str], ProfileState | None]


def state_from_status(
    status: Mapping[str, Any] | None, *, generation: int | None = None, deleting: bool = False
) -> ProfileState:
    """A :class:`ProfileState` from a SeccompProfile's ``status`` (as the controller wrote it).

    Args:
        status: the profile's ``status`` mapping (``phase``, ``ready``, ``conditions``); None or
            empty before the controller wrote one.
        generation: ``metadata.generation`` of the profile as last seen; a ``Ready`` condition
            whose ``observedGeneration`` differs describes an older spec and does not count.
        deleting: ``metadata.deletionTimestamp`` is set (never Ready: the files are going away).

    Never raises; malformed parts count as absent.
    """
    status = status if isinstance(status, Mapping) else {}
    phase = status.get("phase")
    ready_nodes = status.get("ready")
    phase = phase if isinstance(phase, str) else None
    ready_nodes = ready_nodes if isinstance(ready_nodes, str) else None
    cond: Mapping[str, Any] = {}
    conditions = status.get("conditions")
    for item in conditions if isinstance(conditions, list) else []:
        if isinstance(item, Mapping) and item.get("type") == c.COND_READY:
            cond = item
    reason = cond.get("reason") if isinstance(cond.get("reason"), str) else None
    ready = cond.get("status") == "True"
    observed = cond.get("observedGeneration")
    if ready and generation is not None and isinstance(observed, int) and observed != generation:
        ready, reason = False, f"status describes generation {observed}, the spec is at {generation}"
    if deleting:
        ready, phase = False, c.PHASE_TERMINATING
    if phase in (c.PHASE_DISABLED, c.PHASE_TERMINATING):
        ready_nodes = None  # then ``status.ready`` counts nodes that removed the file
    return ProfileState(ready=ready, phase=phase, ready_nodes=ready_nodes, reason=reason)


@dataclass(frozen=True, slots=True)
class Reference:
    """One place of a pod that names one of our profiles' paths.

    Attributes:
        path: field path of the ``localhostProfile`` value, e.g.
            ``spec.initContainers[1].securityContext.seccompProfile.localhostProfile``.
        container: ``'container "app"'``, ``'init container "setup"'``, ``'ephemeral container
            "debugger"'``, ``'inherited by ephemeral container "debugger"'``; None for the pod
            level on CREATE.
        localhost_profile: the value as written in the pod.
    """

    path: str
    container: str | None
    localhost_profile: str

    @property
    def where(self) -> str:
        """The field path followed by the container, for messages."""
        return f"{self.path} ({self.container})" if self.container else self.path


@dataclass(frozen=True, slots=True)
class Problem:
    """One reference that fails the check.

    Attributes:
        reference: where in the pod.
        kind: :data:`~.constants.POD_PROBLEM_MISSING`, :data:`~.constants.POD_PROBLEM_NOT_READY`
            or :data:`~.constants.POD_PROBLEM_MALFORMED`.
        key: the profile's ``<namespace>/<name>``; None for a malformed path.
        detail: why, in the user's terms.
    """

    reference: Reference
    kind: str
    key: str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.reference.where}: {self.detail}"


def is_ours(localhost_profile: str) -> bool:
    """True when the path lies in the managed directory: ``seccomp-operator/...`` once normalised."""
    return posixpath.normpath(localhost_profile).split("/")[0] == c.MANAGED_SUBDIR


def _container(spec: Mapping[str, Any], field: str, index: int) -> Mapping[str, Any]:
    items = spec.get(field)
    if isinstance(items, list) and index < len(items) and isinstance(items[index], Mapping):
        found: Mapping[str, Any] = items[index]
        return found
    return {}


def _describe_container(field: str, container: Mapping[str, Any]) -> str:
    name = container.get("name")
    return f'{_KIND_WORD[field]} "{name}"' if isinstance(name, str) else _KIND_WORD[field]


def _inherits_pod_profile(container: Mapping[str, Any]) -> bool:
    ctx = container.get("securityContext")
    return not (isinstance(ctx, Mapping) and isinstance(ctx.get("seccompProfile"), Mapping))


def _names(pod: Mapping[str, Any] | None, field: str) -> set[str]:
    spec = (pod or {}).get("spec")
    items = spec.get(field) if isinstance(spec, Mapping) else None
    return {
        str(item.get("name"))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, Mapping)
    }


def references(pod: Mapping[str, Any], *, old: Mapping[str, Any] | None = None) -> list[Reference]:
    """The references of ``pod`` to our managed directory that the check covers.

    Args:
        pod: a Pod body (dict as in an AdmissionReview's ``object``).
        old: the pod before an ``ephemeralcontainers`` update (the review's ``oldObject``); when
            given, only ephemeral containers absent from ``old`` (by name) are covered, plus the
            pod-level profile once per new ephemeral container that inherits it.

    Returns:
        ``[Reference, ...]`` in the order pod, containers, initContainers, ephemeralContainers.
    """
    spec = pod.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    found: list[Reference] = []
    pod_value: str | None = None
    for place, value in podrefs.localhost_references(pod):
        if place.startswith("annotation:") or not is_ours(value):
            continue
        if place == "pod":
            pod_value = value
            if old is None:
                found.append(Reference(_POD_PATH, None, value))
            continue
        match = _PLACE.match(place)
        if match is None:  # pragma: no cover - podrefs yields only the places above
            continue
        field, index = match.group(1), int(match.group(2))
        container = _container(spec, field, index)
        if old is not None and (
            field != "ephemeralContainers" or container.get("name") in _names(old, field)
        ):
            continue
        path = f"spec.{field}[{index}].securityContext.seccompProfile.localhostProfile"
        found.append(Reference(path, _describe_container(field, container), value))
    if old is not None and pod_value is not None:
        before = _names(old, "ephemeralContainers")
        items = spec.get("ephemeralContainers")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and item.get("name") not in before and _inherits_pod_profile(item):
                who = f"inherited by {_describe_container('ephemeralContainers', item)}"
                found.append(Reference(_POD_PATH, who, pod_value))
    return found


def check_pod(
    pod: Mapping[str, Any], lookup: Lookup, *, old: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Every reference of ``pod`` to a profile that is malformed, missing or not Ready.

    Args:
        pod: a Pod body; malformed parts are skipped.
        lookup: ``"<namespace>/<name>"`` -> :class:`ProfileState`, or None when the profile does
            not exist (in :mod:`.admission`: the controller's snapshots).
        old: see :func:`references` (ephemeral-container updates).

    Returns:
        ``[Problem, ...]`` in pod order; empty when the pod may start as far as we can tell.
    """
    problems: list[Problem] = []
    for ref in references(pod, old=old):
        key = podrefs.profile_key_of(ref.localhost_profile)
        if key is None:
            detail = (
                f'"{ref.localhost_profile}" is not a file seccomp-operator writes '
                f"({c.MANAGED_SUBDIR}/<namespace>/<name>{c.PROFILE_SUFFIX})"
            )
            problems.append(Problem(ref, c.POD_PROBLEM_MALFORMED, None, detail))
            continue
        state = lookup(key)
        if state is None:
            detail = f"{c.PROFILE_KIND} {key} does not exist"
            problems.append(Problem(ref, c.POD_PROBLEM_MISSING, key, detail))
        elif not state.ready:
            detail = f"{c.PROFILE_KIND} {key} is not Ready ({state.describe()})"
            problems.append(Problem(ref, c.POD_PROBLEM_NOT_READY, key, detail))
    return problems


def refusal_message(problems: Sequence[Problem], limit: int = MAX_PROBLEMS_SHOWN) -> str:
    """The strict mode's refusal: every problem (up to ``limit``, the rest counted), ``; ``-joined."""
    n = len(problems)
    head = (
        f"seccomp-operator ({c.POD_ADMISSION_LABEL}={c.POD_ADMISSION_STRICT}): "
        f"{n} seccomp profile reference{'s' if n != 1 else ''} cannot be used: "
    )
    text = "; ".join(str(p) for p in problems[:limit])
    if n > limit:
        text += f"; and {n - limit} more"
    return head + text


def fit_warnings(texts: Sequence[str], *, more: str = "and {n} more warnings") -> list[str]:
    """Admission warnings within Kubernetes' limits.

    Each text is cut to :data:`WARNING_MAX_CHARS` characters (ending in ``...``); once the next
    one would take the total over :data:`WARNINGS_MAX_BYTES` bytes, the rest are replaced by
    ``more`` (``{n}``: how many were left out).
    """
    out: list[str] = []
    used = 0
    for i, text in enumerate(texts):
        if len(text) > WARNING_MAX_CHARS:
            text = text[: WARNING_MAX_CHARS - 3] + "..."
        rest = len(texts) - i
        tail = more.format(n=rest)
        if used + len(text.encode()) + len(tail.encode()) + 2 > WARNINGS_MAX_BYTES and rest > 1:
            out.append(tail)
            break
        out.append(text)
        used += len(text.encode())
    return out


def warning_texts(problems: Sequence[Problem]) -> list[str]:
    """The warn mode's admission warnings: one per problem, prefixed ``seccomp-operator:``."""
    return fit_warnings([f"seccomp-operator: {p}" for p in problems])
