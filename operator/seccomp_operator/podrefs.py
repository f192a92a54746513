"""Which SeccompProfiles a pod uses: pure functions over a pod body (no kopf, no network).

A pod uses a profile of ours when a ``securityContext.seccompProfile`` of type
``Localhost`` names ``seccomp-operator/<namespace>/<name>.json`` (the value our status
publishes as ``localhostProfile``).  The four places the kubelet reads are checked:
the pod-level ``spec.securityContext``, ``spec.containers[]``,
``spec.initContainers[]`` and ``spec.ephemeralContainers[]``.  The legacy
annotations (``seccomp.security.alpha.kubernetes.io/pod`` and
``container.seccomp.security.alpha.kubernetes.io/<name>`` with ``localhost/<path>``)
are honoured too, since old clusters still carry them.

The controller keeps only the result (a set of profile keys per pod), never the
pod bodies, so its memory grows with the number of pods that use our profiles, not
with the size of all pods.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from typing import Any

from . import constants as c
from . import paths

#: Where a reference was found, as ``(place, localhostProfile)``; place is
#: ``pod``, ``containers[i]``, ``initContainers[i]``, ``ephemeralContainers[i]`` or
#: ``annotation:<key>``.
Reference = tuple[str, str]

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
#: Pods in these phases run nothing any more; the kubelet will not read their profiles.
_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


def _localhost(security_context: Any) -> str | None:
    if not isinstance(security_context, Mapping):
        return None
    prof = security_context.get("seccompProfile")
    if not isinstance(prof, Mapping) or prof.get("type") != "Localhost":
        return None
    value = prof.get("localhostProfile")
    return value if isinstance(value, str) and value else None


def localhost_references(pod: Mapping[str, Any]) -> list[Reference]:
    """Every ``Localhost`` seccomp profile path a pod names, with where it was found.

    Args:
        pod: a Pod body (dict as the API returns it); missing or malformed parts are skipped.

    Returns:
        ``[(place, localhostProfile), ...]`` in the order pod, containers,
        initContainers, ephemeralContainers, annotations; any profile, ours or not.
    """
    spec = pod.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    found: list[Reference] = []
    value = _localhost(spec.get("securityContext"))
    if value:
        found.append(("pod", value))
    for field in _CONTAINER_LISTS:
        items = spec.get(field)
        if not isinstance(items, list):
            continue
        for i, container in enumerate(items):
            if isinstance(container, Mapping):
                value = _localhost(container.get("securityContext"))
                if value:
                    found.append((f"{field}[{i}]", value))
    annotations = (pod.get("metadata") or {}).get("annotations")
    if isinstance(annotations, Mapping):
        for key in sorted(annotations):
            raw = annotations[key]
            if not isinstance(raw, str) or not raw.startswith("localhost/"):
                continue
            if key == _POD_ANNOTATION or str(key).startswith(_CONTAINER_ANNOTATION_PREFIX):
                found.append((f"annotation:{key}", raw[len("localhost/") :]))
    return found


def profile_key_of(localhost_profile: str) -> str | None:
    """The ``<namespace>/<name>`` key of one of our profiles, or None for any other path.

    ``seccomp-operator/<ns>/<name>.json`` maps to ``<ns>/<name>``; a path that
    normalises to it (``./seccomp-operator/...``, doubled slashes) too, since the
    kubelet would open the same file.  Names that are not DNS subdomains are None.
    """
    norm = posixpath.normpath(localhost_profile)
    parts = norm.split("/")
    if len(parts) != 3 or parts[0] != c.MANAGED_SUBDIR or not parts[2].endswith(c.PROFILE_SUFFIX):
        return None
    namespace, name = parts[1], parts[2][: -len(c.PROFILE_SUFFIX)]
    try:
        paths.check_component(namespace, "namespace")
        paths.check_component(name, "name")
    except paths.UnsafeNameError:
        return None
    return paths.profile_key(namespace, name)


def pod_is_finished(pod: Mapping[str, Any]) -> bool:
    """True when the pod's phase is ``Succeeded`` or ``Failed`` (nothing of it runs any more)."""
    status = pod.get("status")
    return isinstance(status, Mapping) and status.get("phase") in _FINISHED_PHASES


def profiles_used(pod: Mapping[str, Any]) -> frozenset[str]:
    """Keys (``<namespace>/<name>``) of our profiles that a pod still needs.

    Empty for a finished pod.  Pods may reference profiles of other namespaces
    (the path is a plain file path); the key is the profile's, not the pod's, namespace.
    """
    if pod_is_finished(pod):
        return frozenset()
    return frozenset(k for k in _keys(localhost_references(pod)) if k is not None)


def _keys(refs: list[Reference]) -> Iterator[str | None]:
    for _, value in refs:
        yield profile_key_of(value)
