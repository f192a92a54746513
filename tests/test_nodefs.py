"""The node-side file layer, on real files below ``tmp_path`` kubelet roots.

Failures are injected through :class:`nodefs.Ops`; two tests also use a real tiny
tmpfs (``ENOSPC``) and a real read-only remount (``EROFS``) when mounting works.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from seccomp_operator import constants as c
from seccomp_operator import nodefs, paths
from seccomp_operator.nodefs import (
    DirWatch,
    FileId,
    KubeletRootMissing,
    ManagedDir,
    NodeWriteError,
    UnsafeEntry,
    WatchHint,
)

PROFILE = b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}\n'
PROFILE2 = b'{"defaultAction": "SCMP_ACT_LOG"}\n'
SECRET = b"root:x:0:0:root:/root:/bin/bash\n"


# --- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def root(tmp_path: Path) -> Path:
    kubelet = tmp_path / "kubelet"
    kubelet.mkdir()
    return kubelet


@pytest.fixture
def md(root: Path) -> Iterator[ManagedDir]:
    with ManagedDir(str(root)) as managed:
        yield managed


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the managed tree standing in for /etc/passwd."""
    target = tmp_path / "passwd"
    target.write_bytes(SECRET)
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return target


def managed(root: Path) -> Path:
    return Path(paths.managed_dir(str(root)))


def profile_file(root: Path, ns: str = "default", name: str = "web") -> Path:
    return Path(paths.profile_path(str(root), ns, name))


def temps(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(c.TEMP_PREFIX)]


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


class FaultyOps(nodefs.Ops):
    """Raises ``OSError(err)`` at ``step`` once armed; otherwise the real calls."""

    def __init__(self, step: str, err: int) -> None:
        self.step = step
        self.err = err
        self.armed = False

    def _maybe(self, step: str) -> None:
        if self.armed and step == self.step:
            raise OSError(self.err, os.strerror(self.err))

    def open(self, name: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if name.startswith(c.TEMP_PREFIX):
            self._maybe("open-temp")
        return super().open(name, flags, mode, dir_fd=dir_fd)

    def fchmod(self, fd: int, mode: int) -> None:
        self._maybe("fchmod")
        super().fchmod(fd, mode)

    def write(self, fd: int, data: memoryview) -> int:
        self._maybe("write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe("fsync")
        super().fsync(fd)

    def rename(self, src: str, dst: str, dir_fd: int) -> None:
        self._maybe("rename")
        super().rename(src, dst, dir_fd)

    def fsync_dir(self, fd: int) -> None:
        self._maybe("fsync-dir")
        super().fsync_dir(fd)

    def mkdir(self, name: str, mode: int, dir_fd: int) -> None:
        self._maybe("mkdir")
        super().mkdir(name, mode, dir_fd)

    def unlink(self, name: str, dir_fd: int) -> None:
        if not name.startswith(c.TEMP_PREFIX):
            self._maybe("unlink")
        super().unlink(name, dir_fd)


# --- writing --------------------------------------------------------------------------------------
def test_write_creates_exact_bytes_in_the_namespace_layout(root: Path, md: ManagedDir) -> None:
    assert md.write("default", "web", PROFILE) is True
    target = root / "seccomp" / "seccomp-operator" / "default" / "web.json"
    assert target.read_bytes() == PROFILE
    assert md.path_of("default", "web") == str(target)
    assert md.managed_path == str(root / "seccomp" / "seccomp-operator")
    assert md.read("default", "web") == PROFILE
    assert tree(root) == [
        "seccomp",
        "seccomp/seccomp-operator",
        "seccomp/seccomp-operator/default",
        "seccomp/seccomp-operator/default/web.json",
    ]


def test_modes_are_0644_and_0755_even_with_umask_077(root: Path, umask_077: None) -> None:
    with ManagedDir(str(root)) as md:
        md.write("team-a", "web", PROFILE)
    for directory in (root / "seccomp", managed(root), managed(root) / "team-a"):
        assert stat.S_IMODE(directory.stat().st_mode) == c.DIR_MODE, directory
    assert stat.S_IMODE(profile_file(root, "team-a").stat().st_mode) == c.FILE_MODE


def test_existing_seccomp_dir_mode_is_left_alone(root: Path) -> None:
    (root / "seccomp").mkdir(mode=0o750)
    os.chmod(root / "seccomp", 0o750)
    with ManagedDir(str(root)) as md:
        md.write("default", "web", PROFILE)
    assert stat.S_IMODE((root / "seccomp").stat().st_mode) == 0o750


def test_identical_write_is_skipped(root: Path, md: ManagedDir) -> None:
    md.write("default", "web", PROFILE)
    target = profile_file(root)
    os.utime(target, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    before = target.stat()
    assert md.write("default", "web", PROFILE) is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )


def test_changed_write_replaces_atomically(root: Path, md: ManagedDir) -> None:
    md.write("default", "web", PROFILE)
    old_ino = profile_file(root).stat().st_ino
    assert md.write("default", "web", PROFILE2) is True
    assert profile_file(root).read_bytes() == PROFILE2
    assert profile_file(root).stat().st_ino != old_ino
    assert temps(root) == []


def test_same_bytes_with_wrong_mode_are_rewritten(root: Path, md: ManagedDir) -> None:
    md.write("default", "web", PROFILE)
    os.chmod(profile_file(root), 0o600)
    assert md.write("default", "web", PROFILE) is True
    assert stat.S_IMODE(profile_file(root).stat().st_mode) == c.FILE_MODE


def test_short_writes_are_completed(root: Path) -> None:
    class OneByte(nodefs.Ops):
        def write(self, fd: int, data: memoryview) -> int:
            return super().write(fd, data[:1])

    with ManagedDir(str(root), ops=OneByte()) as md:
        md.write("default", "web", PROFILE)
    assert profile_file(root).read_bytes() == PROFILE


def test_managed_dir_deleted_behind_our_back_is_recreated(root: Path, md: ManagedDir) -> None:
    md.write("default", "web", PROFILE)
    shutil.rmtree(root / "seccomp")
    assert md.read("default", "web") is None
    assert md.write("default", "web", PROFILE) is True
    assert profile_file(root).read_bytes() == PROFILE


def test_operations_need_open(root: Path) -> None:
    md = ManagedDir(str(root))
    with pytest.raises(RuntimeError, match="not open"):
        md.write("default", "web", PROFILE)
    assert tree(root) == []


# --- kubelet root ------------------------------------------------------------------------------
def test_missing_kubelet_root_names_existing_candidates_and_creates_nothing(tmp_path: Path) -> None:
    present = tmp_path / "var-lib-k0s-kubelet"
    present.mkdir()
    absent = tmp_path / "var-snap-kubelet"
    missing = tmp_path / "var-lib-kubelet"
    before = tree(tmp_path)
    md = ManagedDir(str(missing), candidates=[str(present), str(absent)])
    with pytest.raises(KubeletRootMissing) as info:
        md.open()
    message = str(info.value)
    assert str(missing) in message
    assert str(present) in message
    assert str(absent) not in message
    assert info.value.candidates_present == (str(present),)
    assert info.value.reason == "KubeletRootMissing"
    assert tree(tmp_path) == before


def test_missing_kubelet_root_without_any_candidate(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere"
    with pytest.raises(KubeletRootMissing, match="none of the candidates exist") as info:
        ManagedDir(str(tmp_path / "missing"), candidates=[str(absent)]).open()
    assert info.value.candidates_present == ()
    assert tree(tmp_path) == []


def test_candidates_may_be_given_to_open(tmp_path: Path) -> None:
    present = tmp_path / "k3s-agent-kubelet"
    present.mkdir()
    md = ManagedDir(str(tmp_path / "missing"))
    with pytest.raises(KubeletRootMissing, match=str(present)):
        md.open(candidates=[str(present)])


def test_kubelet_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "kubelet").write_bytes(b"")
    with pytest.raises(KubeletRootMissing):
        ManagedDir(str(tmp_path / "kubelet")).open()


def test_kubelet_root_below_a_0700_parent(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    (private / "kubelet").mkdir()
    with ManagedDir(str(private / "kubelet")) as md:
        assert md.write("default", "web", PROFILE)
        assert md.read("default", "web") == PROFILE


def test_kubelet_root_itself_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "data-kubelet"
    real.mkdir()
    (tmp_path / "kubelet").symlink_to(real)
    with ManagedDir(str(tmp_path / "kubelet")) as md:
        md.write("default", "web", PROFILE)
    assert (real / "seccomp/seccomp-operator/default/web.json").read_bytes() == PROFILE


# --- planted links and special files ------------------------------------------------------------
def test_symlink_at_profile_path_is_never_followed(root: Path, md: ManagedDir, outside: Path) -> None:
    md.write("default", "other", PROFILE)  # creates the namespace directory
    link = profile_file(root)
    link.symlink_to(outside)
    before = outside.stat()

    with pytest.raises(UnsafeEntry, match="symlink") as info:
        md.read("default", "web")
    assert str(outside) in str(info.value)
    assert md.path_of("default", "web") in str(info.value)
    assert info.value.reason == "UnsafeEntry"

    assert md.write("default", "web", PROFILE) is True
    assert not link.is_symlink()
    assert link.read_bytes() == PROFILE
    assert outside.read_bytes() == SECRET
    assert outside.stat().st_mtime_ns == before.st_mtime_ns
    assert outside.stat().st_ino == before.st_ino


def test_symlink_with_identical_target_content_is_still_replaced(
    root: Path, md: ManagedDir, tmp_path: Path
) -> None:
    decoy = tmp_path / "decoy.json"
    decoy.write_bytes(PROFILE)
    os.chmod(decoy, 0o644)
    md.write("default", "other", PROFILE)
    profile_file(root).symlink_to(decoy)
    assert md.write("default", "web", PROFILE) is True
    assert not profile_file(root).is_symlink()


def test_hardlink_at_profile_path(root: Path, md: ManagedDir, outside: Path) -> None:
    md.write("default", "other", PROFILE)
    os.link(outside, profile_file(root))

    with pytest.raises(UnsafeEntry, match="2 hard links"):
        md.read("default", "web")

    assert md.remove("default", "web") is True
    assert not profile_file(root).exists()
    assert outside.read_bytes() == SECRET
    assert outside.stat().st_nlink == 1


def test_write_over_hardlink_leaves_the_other_link_alone(root: Path, md: ManagedDir, outside: Path) -> None:
    md.write("default", "other", PROFILE)
    os.link(outside, profile_file(root))
    assert md.write("default", "web", PROFILE) is True
    assert profile_file(root).read_bytes() == PROFILE
    assert profile_file(root).stat().st_nlink == 1
    assert outside.read_bytes() == SECRET


def test_remove_symlink_removes_only_the_link(root: Path, md: ManagedDir, outside: Path) -> None:
    md.write("default", "other", PROFILE)
    profile_file(root).symlink_to(outside)
    assert md.remove("default", "web") is True
    assert not profile_file(root).is_symlink()
    assert outside.read_bytes() == SECRET


def test_fifo_at_profile_path_is_refused_without_blocking(root: Path, md: ManagedDir) -> None:
    md.write("default", "other", PROFILE)
    os.mkfifo(profile_file(root))
    with pytest.raises(UnsafeEntry, match="fifo"):
        md.read("default", "web")
    assert md.write("default", "web", PROFILE) is True
    assert stat.S_ISREG(profile_file(root).lstat().st_mode)


def test_directory_at_profile_path(root: Path, md: ManagedDir) -> None:
    md.write("default", "other", PROFILE)
    profile_file(root).mkdir()
    (profile_file(root) / "keep").write_bytes(b"x")
    with pytest.raises(UnsafeEntry, match="directory"):
        md.read("default", "web")
    with pytest.raises(UnsafeEntry, match="directory"):
        md.write("default", "web", PROFILE)
    with pytest.raises(UnsafeEntry, match="directory"):
        md.remove("default", "web")
    assert (profile_file(root) / "keep").read_bytes() == b"x"
    assert temps(root) == []


def test_symlink_in_place_of_namespace_dir(root: Path, md: ManagedDir, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (managed(root) / "default").symlink_to(elsewhere)

    with pytest.raises(NodeWriteError) as info:
        md.write("default", "web", PROFILE)
    assert isinstance(info.value, UnsafeEntry)
    assert info.value.reason == "UnsafeEntry"
    assert str(elsewhere) in str(info.value)
    with pytest.raises(UnsafeEntry):
        md.read("default", "web")
    with pytest.raises(UnsafeEntry):
        md.remove("default", "web")
    assert list(elsewhere.iterdir()) == []
    assert (managed(root) / "default").is_symlink()


def test_file_in_place_of_namespace_dir(root: Path, md: ManagedDir) -> None:
    (managed(root) / "default").write_bytes(b"")
    with pytest.raises(UnsafeEntry, match="regular file"):
        md.write("default", "web", PROFILE)


@pytest.mark.parametrize("component", ["seccomp", "seccomp/seccomp-operator"])
def test_symlink_in_place_of_managed_dirs(root: Path, tmp_path: Path, component: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if component != "seccomp":
        (root / "seccomp").mkdir()
    (root / component).symlink_to(elsewhere)
    with pytest.raises(UnsafeEntry, match="symlink") as info:
        ManagedDir(str(root)).open()
    assert str(root / component) in str(info.value)
    assert list(elsewhere.iterdir()) == []


def test_managed_dir_replaced_by_symlink_while_open(root: Path, md: ManagedDir, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(managed(root))
    managed(root).symlink_to(elsewhere)
    with pytest.raises(UnsafeEntry):
        md.write("default", "web", PROFILE)
    assert list(elsewhere.iterdir()) == []


def test_read_is_capped(root: Path, md: ManagedDir, monkeypatch: pytest.MonkeyPatch) -> None:
    md.write("default", "web", b"x" * 64)
    monkeypatch.setattr(nodefs, "READ_CAP", 32)
    with pytest.raises(UnsafeEntry, match="read cap"):
        md.read("default", "web")


# --- read and remove ------------------------------------------------------------------------------
def test_read_and_remove_of_missing_entries(md: ManagedDir) -> None:
    assert md.read("default", "web") is None
    assert md.remove("default", "web") is False
    md.write("default", "other", PROFILE)
    assert md.read("default", "web") is None
    assert md.remove("default", "web") is False


def test_remove_drops_the_namespace_dir_when_empty(root: Path, md: ManagedDir) -> None:
    md.write("default", "a", PROFILE)
    md.write("default", "b", PROFILE)
    assert md.remove("default", "a") is True
    assert (managed(root) / "default").is_dir()
    assert md.remove("default", "b") is True
    assert not (managed(root) / "default").exists()
    assert managed(root).is_dir()


# --- scan and temp files ----------------------------------------------------------------------------
def test_scan_reports_profiles_and_each_anomaly_kind(
    root: Path, md: ManagedDir, outside: Path, tmp_path: Path
) -> None:
    md.write("default", "good", PROFILE)
    md.write("team-b", "also.good", PROFILE2)
    ns = managed(root) / "default"
    (ns / "link.json").symlink_to(outside)
    os.link(outside, ns / "hard.json")
    os.mkfifo(ns / "pipe.json")
    (ns / "dir.json").mkdir()
    (ns / "README").write_bytes(b"")
    (ns / "Upper.json").write_bytes(b"")
    (ns / f"{c.TEMP_PREFIX}abc123").write_bytes(b"partial")
    (managed(root) / "stray-file").write_bytes(b"")
    (managed(root) / "Bad_NS").mkdir()
    (managed(root) / "nslink").symlink_to(tmp_path)

    result = md.scan()

    assert result.profiles == {("default", "good"), ("team-b", "also.good")}
    kinds = {(a.path, a.kind) for a in result.anomalies}
    assert kinds == {
        ("default/link.json", "symlink"),
        ("default/hard.json", "hardlink"),
        ("default/pipe.json", "not-a-file"),
        ("default/dir.json", "not-a-file"),
        ("default/README", "stray"),
        ("default/Upper.json", "stray"),
        (f"default/{c.TEMP_PREFIX}abc123", "temp"),
        ("stray-file", "stray"),
        ("Bad_NS", "stray"),
        ("nslink", "symlink"),
    }
    link = next(a for a in result.anomalies if a.path == "default/link.json")
    assert str(outside) in link.detail
    assert [a.path for a in result.anomalies] == sorted(a.path for a in result.anomalies)
    # The kind reported in the node status comes from the file type and link count alone.
    assert {a.path: a.foreign for a in result.anomalies} == {
        "default/link.json": c.FOREIGN_SYMLINK,
        "default/hard.json": c.FOREIGN_HARDLINK,
        "default/pipe.json": c.FOREIGN_FIFO,
        "default/dir.json": c.FOREIGN_DIRECTORY,
        "default/README": c.FOREIGN_FILE,
        "default/Upper.json": c.FOREIGN_FILE,
        f"default/{c.TEMP_PREFIX}abc123": c.FOREIGN_TEMP,
        "stray-file": c.FOREIGN_FILE,
        "Bad_NS": c.FOREIGN_DIRECTORY,
        "nslink": c.FOREIGN_SYMLINK,
    }
    assert outside.read_bytes() == SECRET


def test_cleanup_temp_removes_leftovers_only(root: Path, md: ManagedDir) -> None:
    md.write("default", "web", PROFILE)
    ns = managed(root) / "default"
    leftover = ns / f"{c.TEMP_PREFIX}deadbeef"
    leftover.write_bytes(b"half a prof")
    tempdir = ns / f"{c.TEMP_PREFIX}dir"
    tempdir.mkdir()

    assert md.scan().profiles == {("default", "web")}
    assert md.cleanup_temp() == [f"default/{c.TEMP_PREFIX}deadbeef"]
    assert not leftover.exists()
    assert tempdir.is_dir()
    assert profile_file(root).read_bytes() == PROFILE
    assert md.cleanup_temp() == []


BAD_COMPONENTS = ["..", ".", "a/b", "/etc", "Upper", "a\x00b", "", "x" * 254, "-lead", "trail-"]


@pytest.mark.parametrize("bad", BAD_COMPONENTS)
def test_unsafe_names_are_refused(root: Path, md: ManagedDir, bad: str) -> None:
    before = tree(root)
    for ns, name in ((bad, "web"), ("default", bad)):
        with pytest.raises(paths.UnsafeNameError):
            md.write(ns, name, PROFILE)
        with pytest.raises(paths.UnsafeNameError):
            md.read(ns, name)
        with pytest.raises(paths.UnsafeNameError):
            md.remove(ns, name)
        with pytest.raises(paths.UnsafeNameError):
            md.path_of(ns, name)
    assert tree(root) == before


# --- injected failures ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "err", "reason"),
    [
        ("write", errno.ENOSPC, "NoSpace"),
        ("fsync", errno.EDQUOT, "NoSpace"),
        ("open-temp", errno.ENOSPC, "NoSpace"),
        ("rename", errno.EROFS, "ReadOnly"),
        ("open-temp", errno.EROFS, "ReadOnly"),
        ("open-temp", errno.EACCES, "PermissionDenied"),
        ("fchmod", errno.EPERM, "PermissionDenied"),
        ("write", errno.EIO, "IOError"),
        ("fsync", errno.EIO, "IOError"),
    ],
)
def test_injected_write_failures_keep_the_old_file(root: Path, step: str, err: int, reason: str) -> None:
    ops = FaultyOps(step, err)
    with ManagedDir(str(root), ops=ops) as md:
        md.write("default", "web", PROFILE)
        old_ino = profile_file(root).stat().st_ino
        ops.armed = True
        with pytest.raises(NodeWriteError) as info:
            md.write("default", "web", PROFILE2)
    assert info.value.reason == reason
    assert str(profile_file(root)) in info.value.message
    assert os.strerror(err) in info.value.message
    assert profile_file(root).read_bytes() == PROFILE
    assert profile_file(root).stat().st_ino == old_ino
    assert temps(root) == []


def test_injected_failure_in_new_namespace_leaves_no_directory(root: Path) -> None:
    ops = FaultyOps("write", errno.ENOSPC)
    with ManagedDir(str(root), ops=ops) as md:
        ops.armed = True
        with pytest.raises(NodeWriteError, match="No space"):
            md.write("fresh", "web", PROFILE)
    assert not (managed(root) / "fresh").exists()
    assert temps(root) == []


def test_injected_failure_creating_the_namespace_dir(root: Path) -> None:
    ops = FaultyOps("mkdir", errno.EROFS)
    with ManagedDir(str(root), ops=ops) as md:
        ops.armed = True
        with pytest.raises(NodeWriteError) as info:
            md.write("fresh", "web", PROFILE)
    assert info.value.reason == "ReadOnly"


def test_injected_failure_creating_the_managed_dir(root: Path) -> None:
    ops = FaultyOps("mkdir", errno.EROFS)
    ops.armed = True
    with pytest.raises(NodeWriteError) as info:
        ManagedDir(str(root), ops=ops).open()
    assert info.value.reason == "ReadOnly"
    assert tree(root) == []


def test_directory_fsync_failure_after_rename_is_reported(root: Path) -> None:
    ops = FaultyOps("fsync-dir", errno.EIO)
    with ManagedDir(str(root), ops=ops) as md:
        md.write("default", "web", PROFILE)
        ops.armed = True
        with pytest.raises(NodeWriteError, match="may not survive a crash") as info:
            md.write("default", "web", PROFILE2)
    assert info.value.reason == "IOError"
    assert profile_file(root).read_bytes() == PROFILE2
    assert temps(root) == []


def test_injected_unlink_failure_on_remove(root: Path) -> None:
    ops = FaultyOps("unlink", errno.EROFS)
    with ManagedDir(str(root), ops=ops) as md:
        md.write("default", "web", PROFILE)
        ops.armed = True
        with pytest.raises(NodeWriteError) as info:
            md.remove("default", "web")
    assert info.value.reason == "ReadOnly"
    assert profile_file(root).read_bytes() == PROFILE


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        (errno.ENOSPC, "NoSpace"),
        (errno.EDQUOT, "NoSpace"),
        (errno.EROFS, "ReadOnly"),
        (errno.EACCES, "PermissionDenied"),
        (errno.EPERM, "PermissionDenied"),
        (errno.ELOOP, "UnsafeEntry"),
        (errno.ENOTDIR, "UnsafeEntry"),
        (errno.EIO, "IOError"),
        (None, "IOError"),
    ],
)
def test_reason_for_errno(err: int | None, reason: str) -> None:
    assert nodefs.reason_for_errno(err) == reason


# --- real file systems (root only) -------------------------------------------------------------------
def _run(*args: str) -> bool:
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted below ``tmp_path``; skipped where mounting is not allowed."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8)")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    if not _run("mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)):
        pytest.skip("cannot mount tmpfs here")
    try:
        yield mountpoint
    finally:
        if not _run("umount", str(mountpoint)):
            _run("umount", "-l", str(mountpoint))


def test_real_enospc_on_a_tiny_tmpfs(tmpfs: Path) -> None:
    kubelet = tmpfs / "kubelet"
    kubelet.mkdir()
    with ManagedDir(str(kubelet)) as md:
        md.write("default", "web", PROFILE)
        with pytest.raises(NodeWriteError) as info:
            md.write("default", "web", b"x" * (1024 * 1024))
    assert info.value.reason == "NoSpace"
    assert profile_file(kubelet).read_bytes() == PROFILE
    assert temps(kubelet) == []


def test_real_read_only_file_system(tmpfs: Path) -> None:
    kubelet = tmpfs / "kubelet"
    kubelet.mkdir()
    with ManagedDir(str(kubelet)) as md:
        md.write("default", "web", PROFILE)
    assert _run("mount", "-o", "remount,ro", str(tmpfs)), "remount read-only failed"
    with ManagedDir(str(kubelet)) as md:
        assert md.read("default", "web") == PROFILE
        assert md.write("default", "web", PROFILE) is False  # nothing to do, nothing fails
        with pytest.raises(NodeWriteError) as info:
            md.write("default", "web", PROFILE2)
        assert info.value.reason == "ReadOnly"
        with pytest.raises(NodeWriteError) as info:
            md.remove("default", "web")
        assert info.value.reason == "ReadOnly"
        with pytest.raises(NodeWriteError) as info:
            md.write("other", "web", PROFILE)
        assert info.value.reason == "ReadOnly"
        assert md.scan().profiles == {("default", "web")}
    assert profile_file(kubelet).read_bytes() == PROFILE


# --- identities of entries ----------------------------------------------------------------------------
def test_identity_tells_every_kind_of_change(root: Path, md: ManagedDir) -> None:
    assert md.identity("default", "web") is None  # no namespace directory yet
    md.write("default", "web", PROFILE)
    first = md.identity("default", "web")
    assert first is not None and first.single_regular
    assert md.identity("default", "web") == first  # nothing changed, nothing differs
    # read_entry's identity comes from fstat of the descriptor it read: the same.
    assert md.read_entry("default", "web") == (PROFILE, first)
    assert md.write("default", "web", PROFILE) is False
    assert md.identity("default", "web") == first  # a skipped write changes nothing
    md.write("default", "web", PROFILE2)
    replaced = md.identity("default", "web")
    assert replaced is not None and replaced.ino != first.ino  # rename: another inode
    target = profile_file(root)
    with target.open("r+b") as f:  # same size, in place
        f.write(PROFILE2[::-1])
    in_place = md.identity("default", "web")
    assert in_place is not None and in_place.ino == replaced.ino and in_place != replaced
    os.chmod(target, 0o600)
    assert md.identity("default", "web") != in_place
    os.link(target, target.parent / "alias")
    linked = md.identity("default", "web")
    assert linked is not None and linked.nlink == 2 and not linked.single_regular
    assert md.entry_id("default", "alias") == linked
    target.unlink()
    assert md.identity("default", "web") is None


def test_entry_id_takes_single_names_and_never_follows(root: Path, md: ManagedDir, outside: Path) -> None:
    md.write("default", "web", PROFILE)
    (managed(root) / "top-link").symlink_to(outside)
    top = md.entry_id("", "top-link")
    assert top is not None and stat.S_ISLNK(top.mode)  # the link itself, not passwd
    assert md.entry_id("", "default") is not None
    assert md.entry_id("default", "nothing") is None
    for bad in ("", ".", "..", "a/b", "x\0y"):
        with pytest.raises(paths.UnsafeNameError):
            md.entry_id("default", bad)
    with pytest.raises(paths.UnsafeNameError):
        md.entry_id("../etc", "passwd")
    (managed(root) / "nsl").symlink_to(tmp := outside.parent)
    with pytest.raises(UnsafeEntry):
        md.entry_id("nsl", "passwd")
    assert tmp.is_dir()


def test_foreign_kind_and_printable(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    os.link(tmp_path / "f", tmp_path / "g")
    (tmp_path / "h").write_bytes(b"")
    os.mkfifo(tmp_path / "p")
    (tmp_path / "l").symlink_to("f")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        kinds = {n: nodefs.foreign_kind(os.lstat(tmp_path / n)) for n in "fhpls"}
    finally:
        sock.close()
    assert kinds == {
        "f": c.FOREIGN_HARDLINK,
        "h": c.FOREIGN_FILE,
        "p": c.FOREIGN_FIFO,
        "l": c.FOREIGN_SYMLINK,
        "s": c.FOREIGN_SOCKET,
    }
    assert nodefs.foreign_kind(os.lstat(tmp_path / "h"), temp=True) == c.FOREIGN_TEMP
    assert nodefs.foreign_kind(os.lstat(tmp_path)) == c.FOREIGN_DIRECTORY
    assert nodefs.foreign_kind(os.lstat("/dev/null")) == c.FOREIGN_DEVICE
    assert nodefs.printable("demo/ok.json") == "demo/ok.json"
    assert nodefs.printable(os.fsdecode(b"a\nb\xff\x1b\x7f")) == "a\\x0ab\\xff\\x1b\\x7f"
    assert nodefs.printable("x" * 50, cap=10) == "xxxxxxx..."


# --- the directory watch --------------------------------------------------------------------------------
async def _hints_until_barrier(watch: DirWatch, root: Path) -> list[WatchHint]:
    """Every hint up to a barrier file created now at the top of the managed directory.

    The kernel queues events in order, so the barrier's event comes after those of
    everything done before; the deadline only bounds a failure.
    """
    barrier = f"zz-barrier-{os.urandom(4).hex()}"
    (managed(root) / barrier).write_bytes(b"")
    hints: list[WatchHint] = []
    async with asyncio.timeout(10):
        while True:
            for event in await watch.next_events(c.WATCH_DRAIN_EVENTS):
                hint = watch.translate(event)
                if hint is not None and hint.namespace == "" and hint.name == barrier:
                    return hints
                if hint is not None:
                    hints.append(hint)


async def test_dir_watch_hints_at_entries_and_skips_the_agents_temporary_files(
    root: Path, md: ManagedDir
) -> None:
    md.write("default", "web", PROFILE)
    watch = DirWatch()
    try:
        watch.arm(md)
        assert watch.armed and watch.namespaces == {"default"}
        md.write("default", "web", PROFILE2)  # temp file, fsync, rename
        target = profile_file(root)
        with target.open("r+b") as f:
            f.write(b"{")
        hints = await _hints_until_barrier(watch, root)
        assert not [h for h in hints if h.name.startswith(c.TEMP_PREFIX)]
        entry = [(h.kind, h.namespace, h.name) for h in hints]
        assert ("entry", "default", "web.json") in entry
        assert any(h.data_changed for h in hints)  # the in-place write
        # A namespace created after arming: its creation is a hint; add_namespace watches it.
        md.write("team-b", "db", PROFILE)
        hints = await _hints_until_barrier(watch, root)
        assert WatchHint("entry", "", "team-b", is_dir=True) in hints
        assert watch.add_namespace(md, "team-b") is True
        profile_file(root, "team-b", "db").unlink()
        hints = await _hints_until_barrier(watch, root)
        assert ("entry", "team-b", "db.json") in [(h.kind, h.namespace, h.name) for h in hints]
        # The namespace directory removed: its own watch says so.
        shutil.rmtree(managed(root) / "team-b")
        hints = await _hints_until_barrier(watch, root)
        assert WatchHint("namespace", "team-b") in hints
        # The managed directory removed: once nothing holds it open (the agent closes its
        # ManagedDir after each pass) the watch says so; re-arming recreates and watches it.
        shutil.rmtree(managed(root))
        md.close()
        async with asyncio.timeout(10):
            while WatchHint("managed") not in [watch.translate(e) for e in await watch.next_events(64)]:
                pass
        watch.arm(md)
        assert managed(root).is_dir() and watch.armed and watch.namespaces == set()
        md.open()
        md.write("default", "web", PROFILE)
        hints = await _hints_until_barrier(watch, root)
        assert WatchHint("entry", "", "default", is_dir=True) in hints
    finally:
        watch.close()


async def test_dir_watch_never_watches_through_a_symlink(root: Path, md: ManagedDir, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    md.write("default", "web", PROFILE)
    (managed(root) / "evil").symlink_to(elsewhere, target_is_directory=True)
    watch = DirWatch()
    try:
        watch.arm(md)
        assert watch.namespaces == {"default"}
        assert watch.add_namespace(md, "evil") is False
        # The namespace directory swapped for a symlink: the new name is not watched.
        shutil.rmtree(managed(root) / "default")
        (managed(root) / "default").symlink_to(elsewhere, target_is_directory=True)
        assert watch.add_namespace(md, "default") is False
        assert watch.namespaces == set()
        (elsewhere / "web.json").write_bytes(SECRET)
        hints = await _hints_until_barrier(watch, root)
        assert not [h for h in hints if h.namespace in ("evil", "default") and h.kind == "entry"]
    finally:
        watch.close()


async def test_dir_watch_failures_name_the_limit(md: ManagedDir) -> None:
    def no_instances() -> NoReturn:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    watch = DirWatch(inotify_factory=no_instances)
    with pytest.raises(nodefs.WatchUnavailable) as info:
        watch.arm(md)
    assert info.value.errno == errno.EMFILE and "fs.inotify.max_user_instances" in info.value.message
    assert not watch.armed
    watch.close()


def test_file_id_single_regular() -> None:
    st = os.stat_result((stat.S_IFREG | 0o644, 1, 2, 1, 0, 0, 10, 0, 0, 0))
    assert FileId.of(st).single_regular
    assert not FileId.of(os.stat_result((stat.S_IFREG | 0o644, 1, 2, 2, 0, 0, 10, 0, 0, 0))).single_regular
    assert not FileId.of(os.stat_result((stat.S_IFLNK | 0o777, 1, 2, 1, 0, 0, 10, 0, 0, 0))).single_regular


def test_inotify_flags_are_the_kernels_and_loaded_only_for_a_watch() -> None:
    from asyncinotify import Mask

    flags = ["MODIFY", "ATTRIB", "CLOSE_WRITE", "MOVED_FROM", "MOVED_TO", "CREATE", "DELETE"]
    flags += ["DELETE_SELF", "MOVE_SELF", "UNMOUNT", "Q_OVERFLOW", "IGNORED", "ONLYDIR"]
    for flag in [*flags, "EXCL_UNLINK", "ISDIR"]:
        assert getattr(nodefs, f"IN_{flag}") == int(getattr(Mask, flag)), flag
    # Importing asyncinotify runs `ldconfig -p`: the CLI and the controller must not pay for it.
    code = "import sys, seccomp_operator.cli, seccomp_operator.agent; print('asyncinotify' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_translate_overflow_and_events_of_forgotten_watches(md: ManagedDir) -> None:
    from asyncinotify import Event, Mask

    watch = DirWatch()
    try:
        watch.arm(md)
        # IN_Q_OVERFLOW comes with wd -1 (no watch): events were lost, check everything.
        assert watch.translate(Event(None, Mask.Q_OVERFLOW, 0, None)) == WatchHint("overflow")
        current = watch._watches[""]
        assert watch.translate(Event(current, Mask.CREATE, 0, Path("x"))) == WatchHint("entry", "", "x")
        watch.arm(md)  # every watch replaced: late events of the old ones say nothing
        assert watch._watches[""] is not current
        assert watch.translate(Event(current, Mask.CREATE, 0, Path("x"))) is None
    finally:
        watch.close()
