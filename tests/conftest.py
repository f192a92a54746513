"""Shared test locations: the real-world cases and reference data are read in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster import world_fixture  # noqa: F401
from tests.dataplane import busybox_root_fixture, containerd_fixture  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
#: ``../shared`` next to the checkout (as CI lays it out); override with SECCOMP_OPERATOR_SHARED.
SHARED = Path(os.environ.get("SECCOMP_OPERATOR_SHARED", REPO.parent / "shared")).resolve()
CASES = SHARED / "cases"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    """``../shared/cases``; fails loudly if the checkout is not laid out as CI lays it out."""
    assert CASES.is_dir(), f"real-world cases not found at {CASES} (set SECCOMP_OPERATOR_SHARED)"
    return CASES


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference``."""
    assert REFERENCE.is_dir(), f"reference data not found at {REFERENCE} (set SECCOMP_OPERATOR_SHARED)"
    return REFERENCE
