"""Where a profile lives: one function for the status field and for the file on disk.

SPO issues 878 and 2904 (case 012) came from the status path and the written path
being computed in two places.  Here :func:`localhost_profile` is the only source;
:func:`profile_path` joins it below the kubelet's seccomp root.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from . import constants as c

#: RFC 1123 label: what Kubernetes allows for namespace names.  Object names
#: of custom resources may be DNS subdomains (dots allowed).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class UnsafeNameError(ValueError):
    """A namespace or name that cannot be turned into a single safe path component."""


def check_component(value: str, what: str) -> str:
    """Return ``value`` if it is safe as one path component, else raise.

    Kubernetes already restricts names to DNS subdomains (at most 253 characters,
    lower-case alphanumerics, ``-`` and ``.``), but the agent must not rely on the
    API server for that: this check refuses ``..``, ``/``, NUL, empty names and
    names over 253 characters whatever the source.

    Raises:
        UnsafeNameError: with a message naming ``what`` (``"namespace"``/``"name"``).
    """
    if not value or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise UnsafeNameError(f"{what} {value!r} is not a DNS subdomain name; refusing to use it as a path")
    return value


def localhost_profile(namespace: str, name: str) -> str:
    """The value for a pod's ``securityContext.seccompProfile.localhostProfile``.

    Shape: ``seccomp-operator/<namespace>/<name>.json``, relative to
    ``<kubelet-root>/seccomp`` as the kubelet resolves it.

    Raises:
        UnsafeNameError: if either part is not a DNS subdomain.
    """
    ns = check_component(namespace, "namespace")
    nm = check_component(name, "name")
    return f"{c.MANAGED_SUBDIR}/{ns}/{nm}{c.PROFILE_SUFFIX}"


def seccomp_root(kubelet_root: str) -> PurePosixPath:
    """``<kubelet-root>/seccomp``: the directory the kubelet resolves Localhost profiles in."""
    return PurePosixPath(kubelet_root) / c.SECCOMP_SUBDIR


def managed_dir(kubelet_root: str) -> PurePosixPath:
    """``<kubelet-root>/seccomp/seccomp-operator``: the only directory the agent writes in."""
    return seccomp_root(kubelet_root) / c.MANAGED_SUBDIR


def profile_path(kubelet_root: str, namespace: str, name: str) -> PurePosixPath:
    """Absolute path of a profile's file on a node whose kubelet root is ``kubelet_root``."""
    return seccomp_root(kubelet_root) / localhost_profile(namespace, name)


def profile_key(namespace: str, name: str) -> str:
    """Key of a profile in node reports and indexes: ``<namespace>/<name>``."""
    return f"{namespace}/{name}"


def split_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`profile_key`.

    Raises:
        ValueError: if ``key`` has no ``/``.
    """
    namespace, sep, name = key.partition("/")
    if not sep:
        raise ValueError(f"not a <namespace>/<name> key: {key!r}")
    return namespace, name
