"""Soak: create, update and delete cycles over many profiles, with bounded agent memory.

Two tests, both bounded in count and (by deadlines) in time:

- **against the emulator** (``CYCLES`` x ``PROFILES`` profiles on ``len(NODES)`` real
  agents): afterwards no file, no temporary file and no namespace directory on any node,
  no entry left in any node report, and the agents' state (profiles, report, render
  cache, pending sets, last written status; measured by walking those objects) grows by
  less than ``STATE_GROWTH_BOUND`` bytes from the end of the first cycle to the end of
  the last;
- **offline** (one agent, :class:`FakeApi`, ``OFFLINE_CYCLES`` cycles): every byte the
  process allocates is traced (``tracemalloc``; nothing else runs).  After ``WARM_UP``
  cycles (caches, interned strings, allocator pools settle), what is still allocated
  after the last cycle exceeds what was after the warm-up by less than
  ``HEAP_GROWTH_BOUND``, and the number of live objects (``gc``) by at most
  ``OBJECT_GROWTH_BOUND``.

Contents repeat from cycle to cycle, so the bounded render cache settles in the first.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from seccomp_operator import constants as c
from seccomp_operator import paths
from seccomp_operator.agent import Agent
from seccomp_operator.devcluster import DevCluster
from tests.cluster import expected_bytes
from tests.polling import eventually
from tests.test_faults_support import FakeApi, make_agent, profile_body, spec

NODES = ("soak-1", "soak-2")
PROFILES = 30
CYCLES = 5
#: Allowed growth of the agents' state over CYCLES - 1 cycles (both agents together).
STATE_GROWTH_BOUND = 64 * 1024

OFFLINE_PROFILES = 100
OFFLINE_CYCLES = 20
WARM_UP = 3
#: Allowed growth of the whole traced heap over OFFLINE_CYCLES - WARM_UP cycles.
HEAP_GROWTH_BOUND = 128 * 1024
#: Allowed growth of the number of live objects over the same cycles.
OBJECT_GROWTH_BOUND = 100


def _spec(i: int, errno: int) -> dict[str, Any]:
    return spec(errno, *["mkdir", "rmdir", "chmod", "chown", "unlink"][: 1 + i % 5])


def deep_size(roots: Iterable[Any]) -> int:
    """Bytes of the objects reachable from ``roots`` through containers and instance dicts/slots."""
    seen: set[int] = set()
    todo = list(roots)
    total = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type) or (callable(obj) and not hasattr(obj, "__dict__")):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            todo.extend(obj)
        elif isinstance(obj, str | bytes | int | float | bool) or obj is None:
            continue
        else:
            if hasattr(obj, "__dict__"):
                todo.append(vars(obj))
            for slot in getattr(type(obj), "__slots__", ()):
                if hasattr(obj, slot):
                    todo.append(getattr(obj, slot))
    return total


def agent_state(agent: Agent) -> int:
    """Bytes of what an agent keeps between steps (not its API client or its loop)."""
    return deep_size(
        [agent.profiles, agent.report, agent.renderer, agent._dirty, agent._gone, agent._written_status]
    )


@pytest.mark.integration
async def test_soak_create_update_delete_cycles_against_the_emulator(tmp_path: Path) -> None:
    async with DevCluster() as cluster:
        await cluster.add_namespace("soak")
        roots: dict[str, Path] = {}
        for node in NODES:
            await cluster.add_node(node)
            roots[node] = tmp_path / node
            roots[node].mkdir()
            await cluster.start_agent(node, str(roots[node]), resync_seconds=2.0)

        def files_are(expected: dict[str, bytes]) -> bool:
            for root in roots.values():
                managed = Path(paths.managed_dir(str(root)))
                try:  # the agent may remove a file or directory while we walk
                    found = {
                        p.name.removesuffix(".json"): p.read_bytes()
                        for p in managed.rglob("*")
                        if p.is_file()
                    }
                except FileNotFoundError:
                    return False
                if found != expected:
                    return False
            return True

        async def reports_are(keys: set[str]) -> bool:
            for node in NODES:
                report = await cluster.get_node_status(node)
                entries = ((report or {}).get("status") or {}).get("profiles") or {}
                if set(entries) != keys or any(e.get("state") != c.NODE_INSTALLED for e in entries.values()):
                    return False
            return True

        measured: list[int] = []
        for cycle in range(CYCLES):
            for errno in (1, 38):  # create, then update every profile
                bodies = [{"metadata": {"name": f"p-{i:03d}", "namespace": "soak"}, "spec": _spec(i, errno)}
                          for i in range(PROFILES)]  # fmt: skip
                for b in bodies:
                    await cluster.apply_profile(b)
                want = {b["metadata"]["name"]: expected_bytes(b) for b in bodies}
                await eventually(
                    lambda w=want: files_are(w), timeout=60, what=f"cycle {cycle}: errno {errno}"
                )
                await eventually(
                    lambda w=want: reports_are({f"soak/{n}" for n in w}),
                    timeout=60,
                    what=f"cycle {cycle}: reported",
                )
            for i in range(PROFILES):
                await cluster.delete_profile("soak", f"p-{i:03d}")
            await eventually(lambda: files_are({}), timeout=60, what=f"cycle {cycle}: removed")
            await eventually(
                lambda: reports_are(set()), timeout=60, what=f"cycle {cycle}: report entries gone"
            )
            measured.append(sum(agent_state(cluster.roles[f"agent/{n}"].agent) for n in NODES))

        for root in roots.values():  # no namespace directory, no temporary file left
            assert os.listdir(Path(paths.managed_dir(str(root)))) == []
        growth = measured[-1] - measured[0]
        assert growth < STATE_GROWTH_BOUND, f"agent state grew by {growth} bytes: {measured}"
        print(f"soak (emulator): {CYCLES}x{PROFILES} profiles x {len(NODES)} nodes; state bytes {measured}")


async def test_soak_offline_agent_heap_is_bounded(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    api = FakeApi()
    agent = make_agent(root, api)
    await agent.step()
    managed = Path(paths.managed_dir(str(root)))
    tracemalloc.start(1)  # one frame: cheap; the totals are what is measured
    try:
        measured: list[int] = []
        objects: list[int] = []
        for cycle in range(OFFLINE_CYCLES):
            for errno in (1, 38):
                bodies = [
                    profile_body("soak", f"p-{i:03d}", _spec(i, errno)) for i in range(OFFLINE_PROFILES)
                ]
                for b in bodies:
                    agent.observe("MODIFIED" if errno == 38 else "ADDED", b)
                api.items = bodies
                await agent.step()
                assert len(list(managed.rglob("*.json"))) == OFFLINE_PROFILES
            for b in bodies:
                agent.observe("DELETED", b)
            api.items = []
            agent.request_full()  # alternate event-driven and list-driven deletion checks
            await agent.step()
            assert os.listdir(managed) == [], f"cycle {cycle}: files left"
            assert api.profiles == {}, f"cycle {cycle}: stale entries"
            gc.collect()
            measured.append(tracemalloc.get_traced_memory()[0])
            objects.append(len(gc.get_objects()))
    finally:
        tracemalloc.stop()
    growth = measured[-1] - measured[WARM_UP - 1]
    assert growth < HEAP_GROWTH_BOUND, f"heap grew by {growth} bytes after warm-up: {measured}"
    assert objects[-1] - objects[WARM_UP - 1] <= OBJECT_GROWTH_BOUND, objects
    print(f"soak (offline): {OFFLINE_CYCLES}x{OFFLINE_PROFILES} profiles; heap {measured}; objects {objects}")
