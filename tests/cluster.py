"""The in-process cluster as a test fixture: emulator, controller, three agents, real files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from seccomp_operator import paths
from seccomp_operator.devcluster import DevCluster
from seccomp_operator.profiles import Renderer, snapshot_from_body
from tests.polling import eventually

NODES = ("node-1", "node-2", "node-3")


class World:
    """The cluster plus the kubelet root of each node."""

    def __init__(self, cluster: DevCluster, roots: dict[str, Path]) -> None:
        self.cluster = cluster
        self.roots = roots

    def file(self, node: str, namespace: str, name: str) -> Path:
        return Path(paths.profile_path(str(self.roots[node]), namespace, name))

    def contents(self, namespace: str, name: str) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for node in self.roots:
            try:
                out[node] = self.file(node, namespace, name).read_bytes()
            except FileNotFoundError:
                out[node] = None
        return out

    async def status(self, namespace: str, name: str) -> dict[str, Any]:
        body = await self.cluster.get_profile(namespace, name)
        return dict((body or {}).get("status") or {})

    async def wait_status(self, namespace: str, name: str, what: str, **expected: Any) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            st = await self.status(namespace, name)
            return st if all(st.get(k) == v for k, v in expected.items()) else None

        result: dict[str, Any] = await eventually(probe, what=f"{namespace}/{name} status {what} {expected}")
        return result


def expected_bytes(body: dict[str, Any], *bases: dict[str, Any]) -> bytes:
    """What ``render`` produces for ``body`` (bases from the same namespace)."""
    snaps = {}
    for b in (body, *bases):
        full = {"metadata": {"namespace": "demo", **b["metadata"]}, "spec": b["spec"]}
        s = snapshot_from_body(full)
        snaps[s.key] = s
    snap = snapshot_from_body({"metadata": {"namespace": "demo", **body["metadata"]}, "spec": body["spec"]})
    return Renderer().render(snap, snaps).content


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    raise AssertionError(f"no condition {type_} in {status}")


@pytest.fixture(name="world")
async def world_fixture(tmp_path: Path) -> AsyncIterator[World]:
    async with DevCluster() as cluster:
        await cluster.add_namespace("demo")
        roots: dict[str, Path] = {}
        for node in NODES:
            await cluster.add_node(node)
            root = tmp_path / node / "kubelet"
            root.mkdir(parents=True)
            roots[node] = root
        await cluster.start_controller(status_interval=0.1)
        for node in NODES:
            await cluster.start_agent(node, str(roots[node]), resync_seconds=2.0)
        yield World(cluster, roots)
