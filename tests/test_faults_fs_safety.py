"""Filesystem safety through the agent: planted links are never followed, nothing outside is touched.

The agent (reconcile and garbage collection, with a :class:`FakeApi`) runs over a
managed directory in which symlinks, hard links, a fifo and a symlinked namespace
directory were planted, pointing at files and directories outside it.  Afterwards
every outside file has the same bytes, mode, inode and mtime, and the same atime:
the outside files' atime is set before their mtime, so under ``relatime`` (and
``strictatime``) any read would move it (a control file shows reads do move it here).
Names from a hostile API (``../../etc``) never become paths.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from seccomp_operator import constants as c
from seccomp_operator import paths
from tests.test_faults_support import FakeApi, make_agent, profile_body, profile_file, rendered, spec

SECRET = b"root:x:0:0:root:/root:/bin/bash\n"


def _fingerprint(path: Path) -> tuple[int, int, int, int, int, int]:
    """``(mode, inode, mtime ns, atime ns, size, links)`` from lstat only: nothing is read."""
    st = os.lstat(path)
    return (
        stat.S_IMODE(st.st_mode),
        st.st_ino,
        st.st_mtime_ns,
        st.st_atime_ns,
        st.st_size,
        st.st_nlink,
    )


def _outside_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    # atime one hour before mtime: any read updates atime under relatime and strictatime
    mtime = 1_700_000_000_000_000_000
    os.utime(path, ns=(mtime - 3600 * 10**9, mtime))
    return path


def _tree(root: Path) -> dict[str, tuple[int, int, int, int, int, int]]:
    return {
        str(p.relative_to(root)): _fingerprint(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _reads_move_atime(tmp_path: Path) -> bool:
    control = _outside_file(tmp_path / "control", b"control\n")
    before = os.stat(control).st_atime_ns
    control.read_bytes()
    return os.stat(control).st_atime_ns != before


async def test_planted_links_are_not_followed_and_nothing_outside_is_read_or_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    passwd = _outside_file(outside / "passwd", SECRET)
    shadow = _outside_file(outside / "shadow", b"root:*:19000:0:99999:7:::\n")
    hosts = _outside_file(outside / "hosts", b"127.0.0.1 localhost\n")
    victim_dir = outside / "victim-ns"
    victim_dir.mkdir()
    victim = _outside_file(victim_dir / "orphan.json", b'{"defaultAction": "SCMP_ACT_ALLOW"}\n')

    web = profile_body("demo", "web", spec(1))
    db = profile_body("demo", "db", spec(2))
    api = FakeApi([web, db])
    agent = make_agent(root, api)
    await agent.step()
    ns_dir = profile_file(root, "demo", "web").parent
    managed = ns_dir.parent

    # Plant: a symlink at a wanted profile's name, a hard link at another wanted name,
    # orphan symlink / hard link / fifo (garbage-collection candidates), a symlink in place of
    # a namespace directory whose target holds a file named like an orphan profile, and a
    # symlink at the top level.
    (ns_dir / "web.json").unlink()
    (ns_dir / "web.json").symlink_to(passwd)
    (ns_dir / "db.json").unlink()
    os.link(shadow, ns_dir / "db.json")
    (ns_dir / "orphan-link.json").symlink_to(hosts)
    os.link(hosts, ns_dir / "orphan-hard.json")
    os.mkfifo(ns_dir / "orphan-fifo.json")
    (managed / "victim-ns").symlink_to(victim_dir, target_is_directory=True)
    (managed / "stray-link").symlink_to(outside, target_is_directory=True)
    (root / "seccomp" / "not-ours.json").write_bytes(b"{}")  # beside the managed dir: never touched

    before = _tree(outside)
    not_ours = _fingerprint(root / "seccomp" / "not-ours.json")
    caplog.set_level(logging.WARNING, logger="seccomp_operator.agent")
    for _ in range(3):  # reconcile + garbage collection, several full passes
        agent.request_full()
        await agent.step()

    # Nothing outside changed: same mode, inode, mtime, size and link count; nor atime, so not
    # even read.  (Link counts: the planted hard links at db.json and orphan-hard.json count.)
    after = _tree(outside)
    if not _reads_move_atime(tmp_path):  # noatime mounts: compare everything but atime
        before = {k: (*v[:3], 0, *v[4:]) for k, v in before.items()}
        after = {k: (*v[:3], 0, *v[4:]) for k, v in after.items()}
    before["shadow"] = (*before["shadow"][:5], 1)  # db.json's hard link was replaced by rename
    assert after == before
    assert _fingerprint(root / "seccomp" / "not-ours.json") == not_ours
    # Bytes last (reading moves atime).
    assert passwd.read_bytes() == SECRET
    assert shadow.read_bytes() == b"root:*:19000:0:99999:7:::\n"
    assert hosts.read_bytes() == b"127.0.0.1 localhost\n"
    assert victim.read_bytes() == b'{"defaultAction": "SCMP_ACT_ALLOW"}\n'
    assert (root / "seccomp" / "not-ours.json").read_bytes() == b"{}"

    # The wanted profiles are regular single-link files again, with the right content.
    for body, name in ((web, "web"), (db, "db")):
        st = os.lstat(ns_dir / f"{name}.json")
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        assert (ns_dir / f"{name}.json").read_bytes() == rendered(body)
    # Planted entries at names no profile wants are left where they are (never followed,
    # never written through; who planted them should see them) and reported.
    assert (ns_dir / "orphan-link.json").is_symlink()
    assert stat.S_ISFIFO(os.lstat(ns_dir / "orphan-fifo.json").st_mode)
    assert os.lstat(ns_dir / "orphan-hard.json").st_nlink == 2
    assert (managed / "victim-ns").is_symlink() and (managed / "stray-link").is_symlink()
    assert api.profiles.keys() == {"demo/web", "demo/db"}
    assert all(e["state"] == c.NODE_INSTALLED for e in api.profiles.values())

    # Reported (agent log, at every full resync): each planted entry, links with their target.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for kind, where, detail in [
        ("symlink", "demo/web.json", str(passwd)),
        ("hardlink", "demo/db.json", "2 hard links"),
        ("symlink", "demo/orphan-link.json", str(hosts)),
        ("hardlink", "demo/orphan-hard.json", "2 hard links"),
        ("not-a-file", "demo/orphan-fifo.json", "fifo"),
        ("symlink", "victim-ns", str(victim_dir)),
        ("symlink", "stray-link", str(outside)),
    ]:
        assert f"kind='{kind}', path='{where}'" in logged and detail in logged, where


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("../../etc", "passwd"),
        ("demo", "../../../etc/passwd"),
        ("..", "x"),
        ("demo", ".."),
        ("demo/../..", "x"),
        ("demo", "a/b"),
        ("demo", "x\x00y"),
        ("demo", "x" * 300),
        ("", "x"),
        ("demo", ".tmp-abc"),
        ("Demo", "UPPER"),
    ],
)
async def test_hostile_names_from_the_api_never_become_paths(
    tmp_path: Path, namespace: str, name: str
) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    good = profile_body("demo", "good", spec(1))
    hostile = profile_body(namespace, name, spec(2))
    api = FakeApi([good, hostile])
    agent = make_agent(root, api)
    outside_before = sorted(str(p) for p in tmp_path.rglob("*"))
    agent.observe("ADDED", hostile)
    await agent.step()
    agent.observe("DELETED", hostile)
    await agent.step()
    created = sorted(set(str(p) for p in tmp_path.rglob("*")) - set(outside_before))
    managed = Path(paths.managed_dir(str(root)))
    # Only the managed tree and the good profile appeared.
    assert all(p == str(root / "seccomp") or p.startswith(str(managed)) for p in created), created
    files = sorted(p.relative_to(managed).as_posix() for p in managed.rglob("*") if p.is_file())
    assert files == ["demo/good.json"]
    assert api.profiles.keys() == {"demo/good"}
    assert api.profiles["demo/good"]["state"] == c.NODE_INSTALLED
