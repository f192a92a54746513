"""Bounded atheris runs of the harnesses in ``fuzz/``: any crash, timeout or memory blow-up fails.

Each harness runs for ``FUZZ_SECONDS`` (default 20) or ``FUZZ_RUNS`` inputs (default
20,000), whichever ends first, with libFuzzer's ``-timeout=10`` (one input may take at
most 10 s) and ``-rss_limit_mb=2048``.  New inputs go to a temporary corpus; the seeds in
``fuzz/corpus/`` are read only.  Skipped where atheris is not installed, except under
``CI``, where a missing atheris is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FUZZ = REPO / "fuzz"
HARNESSES = {
    "fuzz_profile_json": FUZZ / "corpus" / "profile_json",
    "fuzz_inputs": FUZZ / "corpus" / "inputs",
    "fuzz_spec": None,
}


def _require_atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        if os.environ.get("CI"):
            pytest.fail("atheris is not installed; CI must run the fuzzers (pip install atheris)")
        pytest.skip("atheris not installed (pip install atheris)")


@pytest.mark.parametrize("harness", sorted(HARNESSES))
def test_fuzz_harness_runs_clean(harness: str, tmp_path: Path) -> None:
    _require_atheris()
    seconds = int(os.environ.get("FUZZ_SECONDS", "20"))
    runs = int(os.environ.get("FUZZ_RUNS", "20000"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = HARNESSES[harness]
    args = [sys.executable, str(FUZZ / f"{harness}.py"), str(corpus)]
    if seeds is not None:
        args.append(str(seeds))
    args += [
        f"-max_total_time={seconds}",
        f"-runs={runs}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, cwd=tmp_path, env=env)
    log = proc.stderr[-4000:]
    assert proc.returncode == 0, f"{harness} crashed:\n{log}"
    done = re.search(r"Done (\d+) runs", proc.stderr)
    assert done and int(done.group(1)) > 0, log
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
