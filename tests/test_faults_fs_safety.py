"""Filesystem safety through the agent: planted links are never followed, nothing outside is touched.

The agent (reconcile and garbage collection, with a :class:`FakeApi`) runs over a
managed directory in which symlinks, hard links, a fifo and a symlinked namespace
directory were planted, pointing at files and directories outside it.  Afterwards
every outside file has the same bytes, mode, inode and mtime, and the same atime:
the outside files' atime is set before their mtime, so under ``relatime`` (and
``strictatime``) any read would move it (a control file shows reads do move it here).
Names from a hostile API (``../../etc``) never become paths.

Planted entries are also reported in the node's SeccompNodeStatus
(``status.foreignEntries``, at most 20 by path, and ``foreignEntryCount``): a symlink to
the real ``/etc/passwd``, a hard link to another profile, a fifo, a stray directory and
file appear there, with their kind, once a pass has seen them, and leave it once removed;
the report is sent as merge patches of the changed entries only and fits the CRD schema.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from seccomp_operator import constants as c
from seccomp_operator import paths
from tests.test_faults_support import FakeApi, make_agent, profile_body, profile_file, rendered, spec

NODE_STATUS_CRD = Path(__file__).resolve().parents[1] / "crds" / "seccompnodestatuses.yaml"
ETC_PASSWD = Path("/etc/passwd")

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


# --- planted entries in the node status -------------------------------------------------------


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Apply a JSON merge patch (RFC 7386) to ``target`` in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class MergeFakeApi(FakeApi):
    """:class:`FakeApi` applying patches as the API server does (RFC 7386 at every depth),
    and keeping every patch it was sent."""

    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        super().__init__(items)
        self.patches: list[dict[str, Any]] = []

    async def patch_node_status(self, name: str, patch: Mapping[str, Any]) -> None:
        self._call("patch_node_status")
        if self.node_status is None:
            raise RuntimeError("patch before create")
        self.patches.append(copy.deepcopy(dict(patch)))
        _merge(self.node_status, patch)
        self.report_count += 1

    @property
    def status(self) -> dict[str, Any]:
        return dict((self.node_status or {}).get("status") or {})


def _strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever properties are declared."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


@functools.cache
def _status_validator() -> jsonschema.Draft4Validator:
    crd = yaml.safe_load(NODE_STATUS_CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return jsonschema.Draft4Validator(_strict(schema))


def _schema_errors(status: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _status_validator().iter_errors(status)]


def _outside_id(path: Path) -> tuple[int, int, int, int]:
    """``(inode, mtime ns, size, mode)`` from lstat: not atime, which others may move."""
    st = os.lstat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)


async def _full_pass(agent: Any) -> None:
    agent.request_full()
    await agent.step()


async def test_planted_entries_are_reported_in_the_node_status_until_removed(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    web, db = profile_body("demo", "web", spec(1)), profile_body("demo", "db", spec(2))
    api = MergeFakeApi([web, db])
    agent = make_agent(root, api)
    await agent.step()
    assert api.status["foreignEntryCount"] == 0 and api.status["foreignEntries"] == {}
    ns_dir = profile_file(root, "demo", "web").parent
    managed = ns_dir.parent
    # Another seccomp profile on the node, not the operator's (beside the managed directory).
    other_profile = root / "seccomp" / "audit.json"
    other_profile.write_bytes(b'{"defaultAction": "SCMP_ACT_LOG"}\n')
    passwd_before, passwd_bytes = _outside_id(ETC_PASSWD), ETC_PASSWD.read_bytes()
    other_before = _outside_id(other_profile)

    planted = {
        "demo/passwd.json": c.FOREIGN_SYMLINK,  # a symlink to the real /etc/passwd
        "demo/audit-link.json": c.FOREIGN_HARDLINK,  # a hard link to another profile
        "demo/pipe.json": c.FOREIGN_FIFO,
        "demo/subdir": c.FOREIGN_DIRECTORY,
        "notes.txt": c.FOREIGN_FILE,
    }
    (ns_dir / "passwd.json").symlink_to(ETC_PASSWD)
    os.link(other_profile, ns_dir / "audit-link.json")
    os.mkfifo(ns_dir / "pipe.json")
    (ns_dir / "subdir").mkdir()
    (managed / "notes.txt").write_bytes(b"hello\n")
    # At a wanted profile's name a planted symlink is replaced, so it is not left to report.
    (ns_dir / "web.json").unlink()
    (ns_dir / "web.json").symlink_to(ETC_PASSWD)
    # A hard link to a managed profile: the profile is rewritten (a new inode), the planted
    # name keeps the old one, and, being a plain orphan file then, is collected.
    db_inode = os.lstat(ns_dir / "db.json").st_ino
    os.link(ns_dir / "db.json", ns_dir / "db-alias.json")

    patches_before = len(api.patches)
    await _full_pass(agent)
    status = api.status
    assert {p: e["kind"] for p, e in status["foreignEntries"].items()} == planted
    assert status["foreignEntryCount"] == len(planted)
    assert status["foreignEntries"]["demo/passwd.json"]["detail"] == f"symlink -> {ETC_PASSWD}"
    assert status["foreignEntries"]["demo/audit-link.json"]["detail"] == "regular file with 2 hard links"
    assert _schema_errors(status) == []
    # One patch: the new entries and the count; profile entries unchanged, so not sent.
    (patch,) = api.patches[patches_before:]
    assert set(patch["status"]) == {"foreignEntries", "foreignEntryCount"}
    assert set(patch["status"]["foreignEntries"]) == set(planted)
    # The wanted profiles are single-link regular files with their bytes again.
    for body, name in ((web, "web"), (db, "db")):
        st = os.lstat(ns_dir / f"{name}.json")
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        assert (ns_dir / f"{name}.json").read_bytes() == rendered(body)
    assert os.lstat(ns_dir / "db.json").st_ino != db_inode
    assert os.lstat(ns_dir / "db-alias.json").st_ino == db_inode  # never written through
    await _full_pass(agent)
    assert not (ns_dir / "db-alias.json").exists()  # an orphan regular file: collected
    assert {p for p in api.status["foreignEntries"]} == set(planted)  # the rest left alone

    # Removed by whoever planted them: gone from the status, one patch of nulls.
    for rel in planted:
        target = managed / rel
        target.rmdir() if target.is_dir() and not target.is_symlink() else target.unlink()
    patches_before = len(api.patches)
    await _full_pass(agent)
    assert api.status["foreignEntries"] == {} and api.status["foreignEntryCount"] == 0
    (patch,) = api.patches[patches_before:]
    assert patch["status"]["foreignEntries"] == dict.fromkeys(planted)
    assert _schema_errors(api.status) == []

    # Nothing outside changed: same inode, mtime, size and mode, and the same bytes.
    assert _outside_id(ETC_PASSWD) == passwd_before and ETC_PASSWD.read_bytes() == passwd_bytes
    assert _outside_id(other_profile) == other_before
    assert os.lstat(other_profile).st_nlink == 1
    assert other_profile.read_bytes() == b'{"defaultAction": "SCMP_ACT_LOG"}\n'


async def test_foreign_entries_are_capped_counted_and_made_printable(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    api = MergeFakeApi([profile_body("demo", "web", spec(1))])
    agent = make_agent(root, api)
    await agent.step()
    ns_dir = profile_file(root, "demo", "web").parent
    planted = c.FOREIGN_ENTRIES_CAP + 5
    for i in range(planted):
        (ns_dir / f"link-{i:02d}").symlink_to(f"/nowhere/{i}")
    # A name with a newline and bytes that are not UTF-8, and a link target with an escape.
    os.symlink(b"/tmp/\x1b[31mred", os.fsencode(ns_dir) + b"/bad\nname\xff")
    await _full_pass(agent)
    status = api.status
    assert status["foreignEntryCount"] == planted + 1
    listed = status["foreignEntries"]
    assert len(listed) == c.FOREIGN_ENTRIES_CAP
    assert list(listed) == sorted(listed)  # the first ones by path
    assert listed["demo/bad\\x0aname\\xff"] == {
        "kind": c.FOREIGN_SYMLINK,
        "detail": "symlink -> /tmp/\\x1b[31mred",
    }
    assert _schema_errors(status) == []


def test_the_crd_says_what_the_agent_writes() -> None:
    crd = yaml.safe_load(NODE_STATUS_CRD.read_text())
    (version,) = crd["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    foreign = status["foreignEntries"]
    assert foreign["maxProperties"] == c.FOREIGN_ENTRIES_CAP
    assert foreign["additionalProperties"]["properties"]["kind"]["enum"] == list(c.FOREIGN_KINDS)
    assert status["fileWatch"]["properties"]["state"]["enum"] == list(c.FILE_WATCH_STATES)
    columns = {col["name"]: col["jsonPath"] for col in version["additionalPrinterColumns"]}
    assert columns["FOREIGN"] == ".status.foreignEntryCount"
    assert columns["WATCH"] == ".status.fileWatch.state"
