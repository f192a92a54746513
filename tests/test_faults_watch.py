"""Files changed by hand are repaired by the agent's directory watch, not by its resync.

The agent runs under the in-process API emulator (DevCluster) with its full resync an
hour away, so every repair seen here came from the inotify watch of the managed
directory: a file deleted, truncated, overwritten in place, replaced by rename or
chmod-ed, a namespace directory removed, the managed directory removed or moved away.
Each is restored with the expected bytes within a deadline of a few seconds (polled
with :func:`tests.polling.eventually`; how fast it really is belongs in bench/), and
the agent's counters show the watch did it (``trigger="watch"``) and no resync did.

The agent must not react to its own writes: its temporary files and renames come back
as events too.  An ordering barrier (a foreign file created after the writes, whose
event the kernel queues after theirs) shows every own event was handled, and the
write counter shows exactly one write per profile change.

A flood of changes (more than ``WATCH_HINTS_CAP``) collapses into one check of every
file; an agent cancelled as it is woken stops at once.  When the kernel refuses inotify
(instance or watch limit), the agent warns once, says so in ``status.fileWatch``,
repairs at the resync, and recovers when it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import io
import logging
import os
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from asyncinotify import Inotify, Mask, Watch

from seccomp_operator import constants as c
from seccomp_operator import kubectl_plugin, nodefs, paths
from seccomp_operator.agent import TRIGGER_RESYNC, TRIGGER_WATCH, Agent, AgentConfig
from seccomp_operator.devcluster import DevCluster
from seccomp_operator.metrics import sample
from tests.cluster import World, expected_bytes
from tests.polling import eventually
from tests.test_faults_support import FakeApi, profile_body, profile_file, rendered, spec

NODE = "node-1"
#: Deadline for one repair, generous for a loaded CI machine.  The goal (< 1 s) is for the
#: benchmark to measure, not for a test to assert.
REPAIR_DEADLINE = 5.0

WEB: dict[str, Any] = {"metadata": {"name": "web", "namespace": "demo"}, "spec": spec(1, "mkdir")}
DB: dict[str, Any] = {"metadata": {"name": "db", "namespace": "demo"}, "spec": spec(13, "chmod")}
OPS: dict[str, Any] = {"metadata": {"name": "ops", "namespace": "other"}, "spec": spec(38, "mount")}


class Watched(World):
    """One node whose agent resyncs once an hour: only its directory watch can repair."""

    def __init__(self, cluster: DevCluster, root: Path) -> None:
        super().__init__(cluster, {NODE: root})
        self.root = root

    @property
    def agent(self) -> Agent:
        return self.cluster.roles[f"agent/{NODE}"].agent

    @property
    def managed(self) -> Path:
        return Path(paths.managed_dir(str(self.root)))

    def path(self, body: dict[str, Any]) -> Path:
        meta = body["metadata"]
        return self.file(NODE, meta["namespace"], meta["name"])

    def counter(self, name: str, **labels: str) -> float:
        value = sample(self.agent.metrics.registry, name, {"node": NODE, **labels})
        return value or 0.0

    def repairs(self, trigger: str) -> float:
        return self.counter("seccomp_agent_file_repairs_total", trigger=trigger)

    async def node_status(self) -> dict[str, Any]:
        body = await self.cluster.get_node_status(NODE)
        return dict((body or {}).get("status") or {})

    def restored(self, *bodies: dict[str, Any]) -> bool:
        """Every file is a single-link 0644 regular file with the expected bytes."""
        for body in bodies:
            try:
                st = os.lstat(self.path(body))
            except FileNotFoundError:
                return False
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or stat.S_IMODE(st.st_mode) != c.FILE_MODE:
                return False
            if self.path(body).read_bytes() != expected_bytes(body):
                return False
        return True

    async def wait_restored(self, what: str, *bodies: dict[str, Any]) -> None:
        await eventually(lambda: self.restored(*bodies), timeout=REPAIR_DEADLINE, what=what)


@pytest.fixture(name="watched")
async def watched_fixture(tmp_path: Path) -> AsyncIterator[Watched]:
    async with DevCluster() as cluster:
        await cluster.add_node(NODE)
        root = tmp_path / "kubelet"
        root.mkdir()
        await cluster.start_agent(NODE, str(root), resync_seconds=3600)
        world = Watched(cluster, root)

        async def watch_active() -> bool:
            st = await world.node_status()
            return (st.get("fileWatch") or {}).get("state") == c.FILE_WATCH_ACTIVE

        await eventually(watch_active, what="the agent reports its file watch Active")
        yield world


async def _install(world: Watched, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        await world.cluster.apply_profile(body)
    await eventually(lambda: world.restored(*bodies), what="profiles installed")


@pytest.mark.integration
async def test_watch_restores_files_and_directories_changed_by_hand(watched: Watched) -> None:
    world = watched
    await _install(world, WEB, DB, OPS)
    web, db = world.path(WEB), world.path(DB)
    assert world.repairs(TRIGGER_RESYNC) == 0

    web.unlink()
    await world.wait_restored("deleted file restored", WEB)

    with db.open("r+b") as f:  # truncated to half: a torn file
        f.truncate(len(expected_bytes(DB)) // 2)
    await world.wait_restored("truncated file restored", DB)

    # Overwritten in place with bytes of the same length: only IN_MODIFY says so.
    size = len(expected_bytes(WEB))
    with web.open("r+b") as f:
        f.write(b"{}".ljust(size))
    await world.wait_restored("file overwritten in place restored", WEB)

    # Replaced as an editor saves: a new file renamed over the old one.
    (web.parent / "web.json.swp").write_bytes(b'{"defaultAction": "SCMP_ACT_ALLOW"}\n')
    os.rename(web.parent / "web.json.swp", web)
    await world.wait_restored("file replaced by rename restored", WEB)

    os.chmod(db, 0o666)  # made writable by anyone: the bytes are right, the mode is not
    await world.wait_restored("chmod-ed file restored", DB)

    # The namespace directory removed (the agent may recreate files while rmtree runs;
    # whatever rmtree leaves, everything must come back).
    shutil.rmtree(web.parent, ignore_errors=True)
    await world.wait_restored("namespace directory removed: both files restored", WEB, DB)

    # The whole managed directory removed, then moved away: recreated, reinstalled, and
    # watched again (the next change is repaired too).
    shutil.rmtree(world.managed, ignore_errors=True)
    await world.wait_restored("managed directory removed: every file restored", WEB, DB, OPS)
    os.rename(world.managed, world.root / "moved-away")
    await world.wait_restored("managed directory moved away: every file restored", WEB, DB, OPS)
    web.unlink()
    await world.wait_restored("deleted file restored in the recreated directory", WEB)

    # The watch did all of it: no full resync repaired anything.
    assert world.repairs(TRIGGER_RESYNC) == 0
    assert world.repairs(TRIGGER_WATCH) >= 10
    status = await world.node_status()
    assert status["fileWatch"] == {"state": c.FILE_WATCH_ACTIVE, "message": ""}
    assert {k: v["state"] for k, v in status["profiles"].items()} == {
        "demo/web": c.NODE_INSTALLED,
        "demo/db": c.NODE_INSTALLED,
        "other/ops": c.NODE_INSTALLED,
    }
    # What was moved away is no longer the agent's: left as it is.
    assert (world.root / "moved-away" / "other" / "ops.json").read_bytes() == expected_bytes(OPS)


@pytest.mark.integration
async def test_the_agent_does_not_rewrite_files_on_its_own_events(watched: Watched) -> None:
    world = watched
    await _install(world, WEB)
    writes = world.counter("seccomp_agent_file_writes_total")
    ignored = world.counter("seccomp_agent_watch_ignored_total")
    changes = [spec(2, "mkdir"), spec(3, "mkdir", "rmdir"), spec(4, "chmod")]
    for i, new_spec in enumerate(changes):
        body = {"metadata": WEB["metadata"], "spec": new_spec}
        await world.cluster.apply_profile(body)
        await eventually(functools.partial(world.restored, body), what=f"change {i} installed")

    # Barrier: the kernel queues this file's event after those of every write above,
    # and the agent handles events in order, so once it reports the file every event
    # of its own writes (temporary files, renames) has been handled.
    (world.path(WEB).parent / "zz-barrier").write_bytes(b"x")

    async def barrier_reported() -> bool:
        return "demo/zz-barrier" in ((await world.node_status()).get("foreignEntries") or {})

    await eventually(barrier_reported, timeout=REPAIR_DEADLINE, what="the barrier file reported")
    assert world.counter("seccomp_agent_file_writes_total") == writes + len(changes)
    assert world.repairs(TRIGGER_WATCH) == 0 and world.repairs(TRIGGER_RESYNC) == 0
    # Its own renames were seen and recognised as its own (not just missed).
    assert world.counter("seccomp_agent_watch_ignored_total") > ignored


@pytest.mark.integration
async def test_planted_entries_are_reported_by_the_watch_and_hard_links_broken(
    watched: Watched, tmp_path: Path
) -> None:
    """With the resync an hour away, planted entries reach the node status through the
    watch alone, and leave it when removed; a hard link planted to a profile gets that
    profile rewritten (the link broken), its old bytes never written through."""
    world = watched
    await _install(world, WEB, DB)
    ns = world.path(WEB).parent
    outside = tmp_path / "passwd"
    outside.write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    (ns / "evil.json").symlink_to(outside)
    os.mkfifo(ns / "pipe")
    before = world.path(DB).stat().st_ino
    os.link(world.path(DB), ns / "db-alias")  # a hard link to another profile's file

    async def foreign() -> dict[str, Any]:
        return dict((await world.node_status()).get("foreignEntries") or {})

    async def listed() -> dict[str, Any] | None:
        found = await foreign()
        return found if {"demo/evil.json", "demo/pipe", "demo/db-alias"} <= set(found) else None

    found = await eventually(listed, timeout=REPAIR_DEADLINE, what="planted entries reported")
    assert found["demo/evil.json"] == {"kind": c.FOREIGN_SYMLINK, "detail": f"symlink -> {outside}"}
    assert found["demo/pipe"]["kind"] == c.FOREIGN_FIFO
    # db.json was replaced (a new inode, one link): the alias keeps the old file, alone.
    await world.wait_restored("hard-linked profile rewritten", DB)
    assert world.path(DB).stat().st_ino != before
    assert os.lstat(ns / "db-alias").st_ino == before
    assert (ns / "db-alias").read_bytes() == expected_bytes(DB)
    assert outside.read_bytes() == b"root:x:0:0::/root:/bin/sh\n"

    # Users see it: `kubectl get scns` has a FOREIGN column, and so has `kubectl seccomp nodes`.
    out = io.StringIO()
    code = await asyncio.to_thread(kubectl_plugin.main, ["--server", world.cluster.url, "nodes"], out)
    lines = out.getvalue().splitlines()
    assert code == 0 and lines[0].split()[-2:] == ["FOREIGN", "WATCH"], lines
    assert lines[1].split()[0] == NODE and lines[1].split()[-2:] == ["3", c.FILE_WATCH_ACTIVE], lines

    for name in ("evil.json", "pipe", "db-alias"):
        (ns / name).unlink()

    async def cleared() -> bool:
        return not await foreign() and (await world.node_status()).get("foreignEntryCount") == 0

    await eventually(cleared, timeout=REPAIR_DEADLINE, what="removed entries leave the status")
    assert world.repairs(TRIGGER_RESYNC) == 0


async def test_a_flood_of_changes_collapses_into_one_check_of_everything(tmp_path: Path) -> None:
    """More changes than WATCH_HINTS_CAP between two passes: the agent drops the hints and
    checks every file once, still repairing and reporting everything."""
    root = tmp_path / "kubelet"
    root.mkdir()
    body = profile_body("demo", "web", spec(1))
    api = FakeApi([body])
    agent = Agent(AgentConfig(node_name=NODE, kubelet_root=str(root), resync_seconds=3600), api)
    task = asyncio.create_task(agent.run())
    try:
        target = profile_file(root, "demo", "web")
        await eventually(lambda: target.exists() and agent.report.file_watch == c.FILE_WATCH_ACTIVE)
        flood = c.WATCH_HINTS_CAP + 1000
        for i in range(flood):  # each creation is one event, read faster than passes run
            (target.parent / f"junk-{i}").write_bytes(b"")
        target.write_bytes(b"{}")

        def settled() -> bool:
            status = (api.node_status or {}).get("status") or {}
            return status.get("foreignEntryCount") == flood and target.read_bytes() == rendered(body)

        await eventually(settled, what="the flood reported and the profile restored")
        assert sample(agent.metrics.registry, "seccomp_agent_watch_events_total", {"node": NODE}) >= flood
        assert len(agent._hints) <= c.WATCH_HINTS_CAP
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_agent_stops_when_cancelled_as_it_is_woken(tmp_path: Path) -> None:
    """A cancellation arriving in the same loop iteration as a wake-up (the watch wakes the
    agent often) stops the agent: it was lost with asyncio.wait_for on Python 3.11, and the
    agent then ran on until its next resync."""
    root = tmp_path / "kubelet"
    root.mkdir()
    cfg = AgentConfig(node_name=NODE, kubelet_root=str(root), resync_seconds=3600, watch=False)
    for _ in range(20):
        agent = Agent(cfg, None)
        task = asyncio.create_task(agent.run())
        # Once the first pass is done the agent waits for a wake-up (no await in between).
        await eventually(agent.synced.is_set, what="first pass done")
        loop = asyncio.get_running_loop()
        loop.call_soon(agent._wake.set)
        loop.call_soon(task.cancel)
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(10):
                await asyncio.shield(task)


# --- the watch unavailable ----------------------------------------------------------------------


class _RefusingInotify(Inotify):
    """A real inotify instance whose inotify_add_watch fails like a full watch table."""

    refuse = True

    def add_watch(self, path: os.PathLike[str] | bytes | str, mask: Mask) -> Watch:
        if _RefusingInotify.refuse:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().add_watch(path, mask)


def _refusing_factory(where: str) -> tuple[Callable[[], nodefs.DirWatch], Callable[[], None]]:
    """A watch factory failing at ``where`` (``init``: EMFILE, ``add_watch``: ENOSPC), and
    a function that lifts the fault."""
    state = {"refuse": True}

    def init() -> Inotify:
        if state["refuse"]:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return nodefs.new_inotify()

    def lift() -> None:
        state["refuse"] = False
        _RefusingInotify.refuse = False

    _RefusingInotify.refuse = True
    factory = init if where == "init" else _RefusingInotify
    return (lambda: nodefs.DirWatch(inotify_factory=factory)), lift


@pytest.mark.parametrize(
    ("where", "limit"),
    [("init", "fs.inotify.max_user_instances"), ("add_watch", "fs.inotify.max_user_watches")],
)
async def test_watch_unavailable_warns_once_reports_and_falls_back_to_the_resync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str, limit: str
) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    body = profile_body("demo", "web", spec(1))
    api = FakeApi([body])
    factory, lift = _refusing_factory(where)
    cfg = AgentConfig(node_name=NODE, kubelet_root=str(root), resync_seconds=3600)
    agent = Agent(cfg, api, watch_factory=factory)
    caplog.set_level(logging.WARNING, logger="seccomp_operator.agent")
    agent.start_watch()
    try:
        for _ in range(3):  # three full passes: each retries the watch, one warning in all
            agent.request_full()
            await agent.step()
        report = api.node_status["status"] if api.node_status else {}
        assert report["fileWatch"]["state"] == c.FILE_WATCH_UNAVAILABLE
        assert limit in report["fileWatch"]["message"]
        assert "restored at the next full resync" in report["fileWatch"]["message"]
        warnings = [r for r in caplog.records if "file watch unavailable" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        # The resync still repairs.
        target = profile_file(root, "demo", "web")
        target.write_bytes(b"{}")
        agent.request_full()
        await agent.step()
        assert target.read_bytes() == rendered(body)
        repairs = {"node": NODE, "trigger": TRIGGER_RESYNC}
        assert sample(agent.metrics.registry, "seccomp_agent_file_repairs_total", repairs) == 1
        # The limit lifted, the next full pass sets the watch up and says so.
        lift()
        agent.request_full()
        await agent.step()
        assert api.node_status is not None
        assert api.node_status["status"]["fileWatch"] == {"state": c.FILE_WATCH_ACTIVE, "message": ""}
        assert sample(agent.metrics.registry, "seccomp_agent_file_watch_active", {"node": NODE}) == 1
    finally:
        await agent.stop_watch()
