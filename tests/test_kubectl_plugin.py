"""``kubectl seccomp`` against the API emulator, with an explicit server (read-only)."""

from __future__ import annotations

import asyncio
import io

import pytest

from seccomp_operator import constants as c
from seccomp_operator import kubectl_plugin
from tests.cluster import World
from tests.test_rollout_scale import DENY_MKDIR

pytestmark = pytest.mark.integration


async def plugin(world: World, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    # The plugin is synchronous; the emulator serves from this loop, so call it from a thread.
    code = await asyncio.to_thread(kubectl_plugin.main, ["--server", world.cluster.url, *argv], out)
    return code, out.getvalue()


def rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NODE"))
    return {line.split()[0]: line.split() for line in lines[start + 1 :]}


async def test_status_and_nodes_tables(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    await cluster.stop_agent("node-2", reason="CrashLoopBackOff")

    code, text = await plugin(world, "status", "deny-mkdir", "-n", "demo")
    assert code == 0, text
    assert text.startswith("demo/deny-mkdir: ")
    table = rows(text)
    assert set(table) == {"node-1", "node-2", "node-3"}
    assert table["node-1"][1:3] == [c.NODE_INSTALLED, "yes"]
    assert table["node-2"][1] == c.NODE_UNKNOWN and "CrashLoopBackOff" in " ".join(table["node-2"])
    assert text.splitlines()[1].split() == ["NODE", "STATE", "HASH-MATCHES", "MESSAGE", "SINCE"]

    code, text = await plugin(world, "nodes")
    assert code == 0, text
    table = rows(text)
    assert table["node-1"][:5] == ["node-1", "ready", "1", "0", "0"]
    assert table["node-2"][:5] == ["node-2", "CrashLoopBackOff", "0", "0", "1"]
    assert table["node-3"][5] == str(world.roots["node-3"])

    code, _ = await plugin(world, "status", "missing", "-n", "demo")
    assert code == kubectl_plugin.EXIT_NOT_FOUND

    # Read-only: with every role stopped, the plugin's requests are all GETs.
    for name in list(cluster.roles):
        await cluster.stop_role(name)
    before = len(cluster.emulator.requests)
    assert (await plugin(world, "status", "deny-mkdir", "-n", "demo"))[0] == 0
    assert (await plugin(world, "nodes"))[0] == 0
    methods = {str(r.method).upper().rsplit(".", 1)[-1] for r in cluster.emulator.requests[before:]}
    assert methods == {"GET"}, methods
