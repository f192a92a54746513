"""Faults the agent must survive, each injected for real and checked on the files.

- SIGKILL in the middle of writing, hundreds of times: the file is always the old or
  the new complete profile, and a restarted agent cleans up and repairs;
- the API unreachable: files are kept, nothing is deleted because a list failed, the
  agent reports once the API is back;
- watch streams cut and refused for a while (DevCluster): updates, creations and
  deletions made meanwhile are applied once the stream is back, without a resync;
- disk full and read-only file system under the agent: Error with the reason, old file
  intact;
- files truncated, emptied or replaced by a symlink by hand: restored.

Timings are bounded by deadlines (:func:`tests.polling.eventually`), not sleeps.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest

from seccomp_operator import constants as c
from seccomp_operator import nodefs
from seccomp_operator.kube import ApiError, KubeApi
from tests.cluster import NODES, World, expected_bytes
from tests.polling import eventually
from tests.test_faults_support import FakeApi, make_agent, profile_body, profile_file, rendered, spec
from tests.test_nodefs import FaultyOps, tmpfs  # noqa: F401  (tmpfs is a fixture)

# --- SIGKILL mid-write ----------------------------------------------------------------------------

#: Kills per test run.  Each kill lands at a random point of a tight write loop.
KILLS = 300

#: A single-threaded helper that forks one writer per round, so each round costs a fork,
#: not an interpreter start.  The writer alternates two contents through the agent's
#: write path (nodefs.ManagedDir.write) until it is killed.
_FORK_SERVER = textwrap.dedent(
    """
    import os, sys
    from seccomp_operator import nodefs
    root, a_path, b_path = sys.argv[1:4]
    a, b = open(a_path, "rb").read(), open(b_path, "rb").read()
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            md = nodefs.ManagedDir(root)
            md.open()
            i = int(line)
            while True:
                md.write("demo", "web", a if i % 2 else b)
                i += 1
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1, flush=True)
    """
)


@pytest.fixture
def kill_world(tmp_path: Path) -> Iterator[tuple[Path, bytes, bytes]]:
    root = tmp_path / "kubelet"
    root.mkdir()
    a = rendered(profile_body("demo", "web", spec(1, "mkdir")))
    # B is much longer than A, so a torn write of either is visible by length and content.
    b = rendered(profile_body("demo", "web", spec(13, "mkdir", "mkdirat", "chmod", "chown", "rmdir")))
    assert len(b) > len(a)
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    yield root, a, b


def test_sigkill_mid_write_leaves_old_or_new_never_partial(kill_world: tuple[Path, bytes, bytes]) -> None:
    root, a, b = kill_world
    tmp = root.parent
    with nodefs.ManagedDir(str(root)) as md:
        md.write("demo", "web", a)
    target = profile_file(root, "demo", "web")
    ns_dir = target.parent
    server = subprocess.Popen(
        [sys.executable, "-c", _FORK_SERVER, str(root), str(tmp / "a"), str(tmp / "b")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    rng = random.Random(6)
    seen = {a: 0, b: 0}
    temps_left = 0
    try:
        for i in range(KILLS):
            server.stdin.write(f"{i}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            # The fault's timing: a random point in the writer's loop (not a wait for a condition).
            time.sleep(rng.uniform(0, 0.004))  # a random kill point, not a synchronisation
            os.kill(pid, signal.SIGKILL)
            # The helper reaps the writer and says how it died: the file is now quiescent.
            assert int(server.stdout.readline()) == signal.SIGKILL
            data = target.read_bytes()
            assert data in (a, b), f"kill {i}: the file holds {len(data)} bytes that are neither profile"
            seen[data] += 1
            temps_left += sum(1 for n in os.listdir(ns_dir) if n.startswith(c.TEMP_PREFIX))
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    assert server.returncode == 0
    # Both contents were seen, so kills landed before and after renames.
    assert seen[a] > 0 and seen[b] > 0, seen
    # Leftover temporary files prove kills also landed between creating and renaming.
    assert temps_left > 0
    # A restarted agent removes the leftovers and writes what the API says.
    want_body = profile_body("demo", "web", spec(38, "mkdir"))
    api = FakeApi([want_body])
    agent = make_agent(root, api)
    asyncio.run(agent.step())
    assert target.read_bytes() == rendered(want_body)
    assert [n for n in os.listdir(ns_dir) if n.startswith(c.TEMP_PREFIX)] == []
    assert api.profiles["demo/web"]["state"] == c.NODE_INSTALLED


# --- API unreachable ---------------------------------------------------------------------------------


async def test_api_unreachable_keeps_files_and_reports_when_back(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    web = profile_body("demo", "web", spec(1))
    db = profile_body("demo", "db", spec(2))
    api = FakeApi([web, db])
    agent = make_agent(root, api)
    await agent.step()
    assert api.profiles.keys() == {"demo/web", "demo/db"}
    files = {k: profile_file(root, "demo", k) for k in ("web", "db")}
    before = {k: (p.read_bytes(), p.stat().st_ino) for k, p in files.items()}
    reports_before = api.report_count

    # The API goes away: every list and every report fails, many times over.
    api.down = True
    api.items = [web]  # db is deleted meanwhile; the agent cannot know yet
    for _ in range(5):
        agent.request_full()
        await agent.step()
    assert {k: (p.read_bytes(), p.stat().st_ino) for k, p in files.items()} == before
    assert api.calls.count("list_profiles") >= 6
    assert api.report_count == reports_before
    # A watch event still gets through (the agent works from what it has seen).
    agent.observe("MODIFIED", profile_body("demo", "web", spec(5)))
    await agent.step()
    assert files["web"].read_bytes() == rendered(profile_body("demo", "web", spec(5)))
    assert files["db"].read_bytes() == before["db"][0]  # still not deleted: no successful list

    # The API is back: the failed report is retried with a full resync, db is removed.
    api.down = False
    api.items = [profile_body("demo", "web", spec(5))]
    await agent.step()
    assert api.report_count > reports_before
    assert api.profiles.keys() == {"demo/web"}
    assert api.profiles["demo/web"]["state"] == c.NODE_INSTALLED
    assert not files["db"].exists()


async def test_failed_first_list_deletes_nothing_on_disk(tmp_path: Path) -> None:
    """An agent starting while the API is down never reads the empty memory as "all deleted"."""
    root = tmp_path / "kubelet"
    root.mkdir()
    body = profile_body("demo", "web", spec(1))
    with nodefs.ManagedDir(str(root)) as md:
        md.write("demo", "web", rendered(body))
    api = FakeApi([body])
    api.down = True
    agent = make_agent(root, api)
    for _ in range(3):
        agent.request_full()
        await agent.step()
    assert profile_file(root, "demo", "web").read_bytes() == rendered(body)
    assert not agent.authoritative
    api.down = False
    agent.request_full()
    await agent.step()
    assert api.profiles["demo/web"]["state"] == c.NODE_INSTALLED
    # An empty *successful* list is authoritative: then, and only then, the file goes.
    api.items = []
    agent.request_full()
    await agent.step()
    assert not profile_file(root, "demo", "web").exists()


class _Custom:
    """Stands in for kubernetes' CustomObjectsApi: returns what it is given, or raises it."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def list_cluster_custom_object(self, *args: Any) -> Any:
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    "result",
    [
        {"kind": "SeccompProfileList"},  # no items: a partial or malformed answer
        {"items": None},
        ["not", "a", "list", "object"],
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    ],
    ids=["no-items", "null-items", "not-an-object", "refused"],
)
async def test_kube_list_never_returns_a_short_list(result: Any) -> None:
    api = KubeApi.__new__(KubeApi)
    api._custom = _Custom(result)
    with pytest.raises(ApiError) as info:
        await api.list_profiles()
    assert info.value.status == 0


# --- disk full and read-only through the agent -------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "err", "reason"),
    [
        ("write", errno.ENOSPC, nodefs.REASON_NO_SPACE),
        ("fsync", errno.EDQUOT, nodefs.REASON_NO_SPACE),
        ("open-temp", errno.EROFS, nodefs.REASON_READ_ONLY),
        ("rename", errno.EROFS, nodefs.REASON_READ_ONLY),
    ],
)
async def test_agent_reports_write_faults_with_reason_and_keeps_the_old_file(
    tmp_path: Path, step: str, err: int, reason: str
) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    ops = FaultyOps(step, err)
    old = profile_body("demo", "web", spec(1))
    api = FakeApi([old])
    agent = make_agent(root, api, directory=nodefs.ManagedDir(str(root), ops=ops))
    await agent.step()
    target = profile_file(root, "demo", "web")
    assert target.read_bytes() == rendered(old)
    ops.armed = True
    new = profile_body("demo", "web", spec(38))
    agent.observe("MODIFIED", new)
    await agent.step()
    entry = api.profiles["demo/web"]
    assert entry["state"] == c.NODE_ERROR
    assert entry["message"].startswith(f"{reason}:"), entry["message"]
    assert entry["contentHash"] == _sha(rendered(old))  # the report says what is really on disk
    assert target.read_bytes() == rendered(old)
    assert [n for n in os.listdir(target.parent) if n.startswith(c.TEMP_PREFIX)] == []
    # The fault clears: the next resync installs the new content.
    ops.armed = False
    api.items = [new]
    agent.request_full()
    await agent.step()
    assert api.profiles["demo/web"]["state"] == c.NODE_INSTALLED
    assert target.read_bytes() == rendered(new)


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


async def test_agent_on_a_real_full_and_then_read_only_tmpfs(tmpfs: Path) -> None:  # noqa: F811
    root = tmpfs / "kubelet"
    root.mkdir()
    old = profile_body("demo", "web", spec(1))
    api = FakeApi([old])
    agent = make_agent(root, api)
    await agent.step()
    target = profile_file(root, "demo", "web")
    assert target.read_bytes() == rendered(old)
    # Fill the 256 KiB file system, then ask for a new content.
    filler = tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as full:
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert full.value.errno == errno.ENOSPC
    new = profile_body("demo", "web", spec(38, "mkdir", "rmdir"))
    api.items = [new]
    agent.observe("MODIFIED", new)
    await agent.step()
    entry = api.profiles["demo/web"]
    assert (entry["state"], entry["message"].split(":")[0]) == (c.NODE_ERROR, nodefs.REASON_NO_SPACE)
    assert target.read_bytes() == rendered(old)
    filler.unlink()
    # Read-only remount: the same, with ReadOnly.
    assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=False).returncode == 0
    try:
        agent.request_full()
        await agent.step()
        entry = api.profiles["demo/web"]
        assert (entry["state"], entry["message"].split(":")[0]) == (c.NODE_ERROR, nodefs.REASON_READ_ONLY)
        assert target.read_bytes() == rendered(old)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=False)
    agent.request_full()
    await agent.step()
    assert api.profiles["demo/web"]["state"] == c.NODE_INSTALLED
    assert target.read_bytes() == rendered(new)


# --- files changed by hand (integration) -------------------------------------------------------------

DENY: dict[str, Any] = {"metadata": {"name": "deny", "namespace": "demo"}, "spec": spec(13, "mkdir")}


@pytest.mark.integration
async def test_truncated_emptied_and_relinked_files_are_restored(world: World, tmp_path: Path) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY)
    want = expected_bytes(DENY)
    await eventually(lambda: world.contents("demo", "deny") == {n: want for n in NODES}, what="installed")
    outside = tmp_path / "passwd"
    outside.write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    f1, f2, f3 = (world.file(n, "demo", "deny") for n in NODES)
    with f1.open("r+b") as f:  # truncated to half: a torn file
        f.truncate(len(want) // 2)
    f2.write_bytes(b"")  # emptied
    f3.unlink()
    f3.symlink_to(outside)  # replaced by a symlink to a file outside
    await eventually(
        lambda: all(p.is_file() and not p.is_symlink() and p.read_bytes() == want for p in (f1, f2, f3)),
        what="truncated, emptied and relinked files restored",
    )
    assert outside.read_bytes() == b"root:x:0:0::/root:/bin/sh\n"


# --- watch streams cut ------------------------------------------------------------------------------


@pytest.mark.integration
async def test_watch_cut_and_refused_then_resumed_misses_nothing(tmp_path: Path) -> None:
    """Cut every open watch stream and refuse new ones; change profiles; let the streams back.

    The agent's periodic resync is set to an hour, so only the watch (and the re-list
    Kopf does when it reconnects) can bring the changes.
    """
    from seccomp_operator.devcluster import DevCluster

    async with DevCluster() as cluster:
        # Serve every watch in a task we know, so that it can be cut (cancelled: the server
        # drops the connection mid-stream) and refused with 503 while "outage" is set.
        emulator = cluster.emulator
        real_handle = emulator._handle
        streams: set[asyncio.Task[Any]] = set()
        refused = {"n": 0}
        outage = False

        async def handle(request: Any) -> Any:
            if request.action != kmock.action.WATCH:
                return await real_handle(request)
            if outage:
                refused["n"] += 1
                raise kmock.KubernetesError(status=503, reason="ServiceUnavailable", message="watch refused")
            task = asyncio.current_task()
            assert task is not None
            streams.add(task)
            try:
                return await real_handle(request)
            finally:
                streams.discard(task)

        emulator._handle = handle
        await cluster.add_namespace("demo")
        await cluster.add_node("node-1")
        root = tmp_path / "kubelet"
        root.mkdir()
        await cluster.start_agent("node-1", str(root), resync_seconds=3600)
        keep = {"metadata": {"name": "keep", "namespace": "demo"}, "spec": spec(1)}
        change = {"metadata": {"name": "change", "namespace": "demo"}, "spec": spec(2)}
        drop = {"metadata": {"name": "drop", "namespace": "demo"}, "spec": spec(3)}
        for body in (keep, change, drop):
            await cluster.apply_profile(body)
        f = {
            b["metadata"]["name"]: profile_file(root, "demo", b["metadata"]["name"])
            for b in (keep, change, drop)
        }
        await eventually(lambda: all(p.exists() for p in f.values()), what="three files written")
        await eventually(lambda: bool(streams), what="the agent's watch stream is open")
        outage = True
        for task in list(streams):
            task.cancel()

        async def watches_refused() -> bool:
            return refused["n"] > 0

        await eventually(watches_refused, what="the agent tries to watch again and is refused")
        changed = {"metadata": {"name": "change", "namespace": "demo"}, "spec": spec(38)}
        added = {"metadata": {"name": "added", "namespace": "demo"}, "spec": spec(4)}
        await cluster.apply_profile(changed)
        await cluster.apply_profile(added)
        await cluster.delete_profile("demo", "drop")
        # Nothing arrives while the stream is down (no controller: no finalizer on "drop");
        # the agent's own calls still work, but its resync is an hour away.
        assert f["change"].read_bytes() == expected_bytes(change)
        assert f["drop"].exists()
        outage = False
        f_added = profile_file(root, "demo", "added")
        await eventually(
            lambda: (
                f["change"].read_bytes() == expected_bytes(changed)
                and f_added.exists()
                and f_added.read_bytes() == expected_bytes(added)
            ),
            timeout=60,
            what="update and creation made during the outage applied",
        )
        await eventually(
            lambda: (
                f["change"].read_bytes() == expected_bytes(changed)
                and f_added.exists()
                and f_added.read_bytes() == expected_bytes(added)
                and not f["drop"].exists()
            ),
            timeout=60,
            what="update, creation and deletion made during the outage applied",
        )
        assert f["keep"].read_bytes() == expected_bytes(keep)


@pytest.mark.parametrize("event", [None, "ADDED"], ids=["relisted", "re-added"])
async def test_relist_after_a_watch_restart_triggers_a_full_resync(tmp_path: Path, event: str | None) -> None:
    """A watch restarted after a gap (410 Gone, cut stream) lists again: deletions made in the
    gap come as no event at all, so a re-listed (type None) or re-ADDED known object makes
    the agent check a full list, which removes the deleted profile's file."""
    root = tmp_path / "kubelet"
    root.mkdir()
    keep, drop = profile_body("demo", "keep", spec(1)), profile_body("demo", "drop", spec(2))
    api = FakeApi([keep, drop])
    agent = make_agent(root, api)
    await agent.step()
    assert profile_file(root, "demo", "drop").exists()
    api.items = [keep]  # "drop" deleted while the stream was down
    agent.observe(event, keep)
    await agent.step()
    assert not profile_file(root, "demo", "drop").exists()
    assert api.profiles.keys() == {"demo/keep"}
