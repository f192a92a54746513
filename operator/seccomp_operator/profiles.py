"""Profile snapshots and rendering with base profiles, shared by controller and agent.

Both roles keep the SeccompProfiles they watch as :class:`ProfileSnapshot` objects
and render them with :class:`Renderer`, which resolves ``baseProfileName`` inside
the same namespace and caches results by content, so that the controller's
expected hash and every agent's written bytes come from the same code.
Pure: no kopf, no network.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import constants as c
from . import render as render_mod
from .findings import BaseProfileMissing, Finding, ProfileError, Severity


@dataclass(frozen=True, slots=True)
class ProfileSnapshot:
    """What the roles need to know of one SeccompProfile object.

    Attributes:
        namespace, name: identity.
        spec: the raw ``spec`` mapping as served by the API.
        deleting: ``metadata.deletionTimestamp`` is set.
        generation: ``metadata.generation`` (None where the API does not serve it).
        uid: ``metadata.uid`` (may be empty on the emulator).
    """

    namespace: str
    name: str
    spec: Mapping[str, Any]
    deleting: bool = False
    generation: int | None = None
    uid: str = ""

    @property
    def key(self) -> str:
        """``<namespace>/<name>``."""
        return f"{self.namespace}/{self.name}"

    @property
    def enabled(self) -> bool:
        """``spec.state`` is not ``Disabled`` (absent means Enabled)."""
        return bool(self.spec.get("state", c.STATE_ENABLED) != c.STATE_DISABLED)

    @property
    def wanted(self) -> bool:
        """The file should exist on nodes: enabled and not being deleted."""
        return self.enabled and not self.deleting

    @property
    def base_name(self) -> str | None:
        """``spec.baseProfileName`` if it is a non-empty string."""
        base = self.spec.get("baseProfileName")
        return base if isinstance(base, str) and base else None


def snapshot_from_body(body: Mapping[str, Any]) -> ProfileSnapshot:
    """Build a snapshot from a SeccompProfile body (a dict or kopf Body).

    Raises:
        ValueError: if ``metadata.name`` or ``metadata.namespace`` is missing.
    """
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not isinstance(namespace, str):
        raise ValueError("SeccompProfile without metadata.name/namespace")
    spec = body.get("spec")
    generation = meta.get("generation")
    return ProfileSnapshot(
        namespace=namespace,
        name=name,
        spec=plain(spec) if isinstance(spec, Mapping) else {},
        deleting=bool(meta.get("deletionTimestamp")),
        generation=int(generation) if isinstance(generation, int) else None,
        uid=str(meta.get("uid") or ""),
    )


def plain(value: Any) -> Any:
    """Deep-copy kopf's read-only views into plain dicts and lists (other values as they are)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Renderer:
    """Render snapshots, resolving bases from a mapping of snapshots, with an LRU cache.

    The cache key is the canonical JSON of the profile's spec and of every base in
    its chain, so a change to a base re-renders its dependents and nothing else.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._cache: OrderedDict[str, render_mod.Rendered | ProfileError] = OrderedDict()
        self._capacity = capacity

    def render(self, snap: ProfileSnapshot, profiles: Mapping[str, ProfileSnapshot]) -> render_mod.Rendered:
        """Render ``snap`` with its bases looked up in ``profiles`` (keyed ``ns/name``).

        Returns:
            the rendered file (bytes, sha256, non-error findings).

        Raises:
            BaseProfileMissing: a base in the chain does not exist.
            ProfileError: the spec (or a base's spec) is invalid, the chain has a cycle
                or is deeper than ``MAX_BASE_DEPTH``.
        """
        chain = [snap.spec]
        seen = {snap.name}
        current = snap
        while current.base_name is not None and len(chain) <= c.MAX_BASE_DEPTH + 1:
            base = profiles.get(f"{snap.namespace}/{current.base_name}")
            if base is None or base.name in seen:
                break
            seen.add(base.name)
            chain.append(base.spec)
            current = base
        cache_key = json.dumps([snap.namespace, *chain], sort_keys=True, separators=(",", ":"), default=str)
        cached = self._cache.get(cache_key)
        if cached is None:
            cached = self._render_uncached(snap, profiles)
            self._cache[cache_key] = cached
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(cache_key)
        if isinstance(cached, ProfileError):
            raise cached
        return cached

    @staticmethod
    def _render_uncached(
        snap: ProfileSnapshot, profiles: Mapping[str, ProfileSnapshot]
    ) -> render_mod.Rendered | ProfileError:
        def lookup(name: str) -> Mapping[str, Any] | None:
            base = profiles.get(f"{snap.namespace}/{name}")
            return base.spec if base is not None else None

        try:
            return render_mod.render_mapping(snap.spec, lookup_base=lookup, name=snap.name)
        except ProfileError as e:
            return e


def dependents(key: str, profiles: Mapping[str, ProfileSnapshot]) -> set[str]:
    """Keys of every profile whose base chain includes ``key`` (not ``key`` itself)."""
    namespace, _, name = key.partition("/")
    children: dict[str, list[str]] = {}
    for snap in profiles.values():
        if snap.namespace == namespace and snap.base_name:
            children.setdefault(snap.base_name, []).append(snap.name)
    found: set[str] = set()
    todo = [name]
    while todo:
        for child in children.get(todo.pop(), []):
            child_key = f"{namespace}/{child}"
            if child_key not in found and child_key != key:
                found.add(child_key)
                todo.append(child)
    return found


def problem_findings(error: ProfileError) -> tuple[Finding, ...]:
    """The findings of a render failure, errors first (never empty)."""
    return tuple(error.findings) or (Finding(Severity.ERROR, "spec", str(error)),)


def is_base_missing(error: ProfileError) -> bool:
    """True when the only problem is a base profile that does not exist yet."""
    return isinstance(error, BaseProfileMissing)


def all_keys(snaps: Iterable[ProfileSnapshot]) -> set[str]:
    """The keys of ``snaps``."""
    return {s.key for s in snaps}
