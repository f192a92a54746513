"""pytest glue for the real data plane (containerd + runc): fixtures and the CI rule.

The machinery lives in :mod:`seccomp_operator.containerd` (the demo uses it too).  Here:

* :func:`require_dataplane` -- fail under CI, skip elsewhere, when root, containerd, runc or
  busybox-static is missing;
* fixtures ``containerd`` (session) and ``busybox_root`` (function), defined as
  :func:`containerd_fixture` / :func:`busybox_root_fixture` so that importing them does not
  shadow the parameter names; ``tests/conftest.py`` imports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seccomp_operator.containerd import (
    Containerd,
    acquire_containerd,
    busybox_rootfs,
    in_ci,
    missing_prerequisites,
    release_containerd,
)


def require_dataplane() -> None:
    """Fail (under CI) or skip (elsewhere) the calling test when :func:`missing_prerequisites` finds any.

    Raises:
        pytest.fail.Exception: under CI (``.ci/install-dataplane.sh`` should have installed everything).
        pytest.skip.Exception: outside CI.
    """
    problems = missing_prerequisites()
    if not problems:
        return
    text = "; ".join(problems)
    if in_ci():
        pytest.fail(f"data-plane prerequisites missing under CI: {text} (run .ci/install-dataplane.sh)")
    pytest.skip(f"data-plane prerequisites missing and CI is not set, so skipping: {text}")


# --------------------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session", name="containerd")
def containerd_fixture() -> Iterator[Containerd]:
    """Session fixture: a reachable :class:`Containerd` (system or private), stopped at the end.

    Fails under CI and skips elsewhere when root, containerd, runc or busybox-static is missing
    (:func:`require_dataplane`).
    """
    require_dataplane()
    daemon = acquire_containerd()
    try:
        yield daemon
    finally:
        release_containerd()


@pytest.fixture(name="busybox_root")
def busybox_root_fixture(tmp_path: Path) -> Path:
    """Function fixture: a fresh :func:`busybox_rootfs` in ``tmp_path / "rootfs"``."""
    require_dataplane()
    return busybox_rootfs(tmp_path / "rootfs")
