"""The benchmark's measurements that need a process of their own (run by ``bench/rollout.py``).

``python bench/children.py KIND ARGS...`` prints one JSON line:

- ``import-floor agent|controller``: RSS (MiB) after the imports of the role's shipped
  entry point (``seccomp_operator.cli`` with its argument parser, then the role's
  handlers), with no data;
- ``agent-offline COUNT``: an agent cold start installing COUNT profiles, a restart that
  verifies them, and one full resync pass that repairs a file changed by hand (no API),
  each in seconds, with the floors of plain atomic writes and plain reads of the same bytes;
- ``controller COUNT NODES``: the controller with COUNT profiles and NODES node reports
  listing all of them: peak RSS (MiB, floor: its imports) and the seconds to compute every
  status once.

This module imports nothing of the operator at its top but the constants, so that each
floor is what the measured code imports, not what the benchmark imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seccomp_operator import constants as c

if TYPE_CHECKING:
    from seccomp_operator.agent import AgentConfig


def spec_of(i: int, errno: int = 1) -> dict[str, Any]:
    """A small distinct profile (one ERRNO rule; ``i`` varies the syscall set)."""
    names = ["mkdir", "mkdirat", "rmdir", "unlinkat", "chmod", "fchmod", "chown", "fchown"]
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": errno, "names": names[: 1 + i % len(names)]}],
        "architectures": ["SCMP_ARCH_X86_64"],
    }


def errno_of(generation: int) -> int:
    """The errno of ``bench-<i>`` at a generation: 1 (as created) for odd ones, 13 for even ones."""
    return 1 if generation % 2 else 13


def body_of(i: int, errno: int = 1) -> dict[str, Any]:
    """A SeccompProfile ``bench/bench-<i>``."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROFILE_KIND,
        "metadata": {"name": f"bench-{i}", "namespace": "bench"},
        "spec": spec_of(i, errno),
    }


def vm(field: str, pid: int | str = "self") -> float:
    """``VmRSS``/``VmHWM`` of a process in MiB (0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def agent_config(name: str, root: str) -> AgentConfig:
    """A simulated node's config: no periodic resync or taint during the run, no inotify watch."""
    from seccomp_operator.agent import AgentConfig

    extra: dict[str, Any] = {}
    if "watch" in {f.name for f in dataclasses.fields(AgentConfig)}:
        extra["watch"] = False  # N inotify instances would exceed fs.inotify.max_user_instances
    return AgentConfig(node_name=name, kubelet_root=root, resync_seconds=3600, remove_taint=False, **extra)


def import_floor(kind: str) -> dict[str, Any]:
    """RSS after the imports of a role's entry point, no data (the shipped ``cli`` path)."""
    from seccomp_operator import cli

    cli.build_parser()
    if kind == "agent":
        from seccomp_operator import agent_handlers, roles  # noqa: F401
    else:
        from seccomp_operator import controller_handlers, roles  # noqa: F401
    return {"floor_rss_mib": vm("VmRSS"), "kubernetes_imported": "kubernetes" in sys.modules}


def agent_offline(count: int) -> dict[str, Any]:
    """Cold start, restart verify and one repair pass over ``count`` profiles (no API)."""
    from seccomp_operator.agent import Agent

    root = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    bodies = [
        body_of(i, errno=1 + i % 100) | {"metadata": {"name": f"p-{i}", "namespace": "bench"}}
        for i in range(count)
    ]

    def fresh() -> Agent:
        agent = Agent(agent_config("bench", str(root)), None)
        for b in bodies:
            agent.observe(None, b)
        return agent

    agent = fresh()
    t0 = time.monotonic()
    asyncio.run(agent.step())
    install = time.monotonic() - t0
    assert agent.report.status(agent.cfg)["installed"] == count, agent.report.status(agent.cfg)["failed"]
    again = fresh()  # a restart: a fresh agent verifies every file (bytes already match: no write)
    t0 = time.monotonic()
    asyncio.run(again.step())
    verify = time.monotonic() - t0
    target = root / "seccomp" / "seccomp-operator" / "bench" / "p-7.json"
    good = target.read_bytes()
    target.write_bytes(b"{}")  # changed by hand; one full resync pass restores it
    again.request_full()
    t0 = time.monotonic()
    asyncio.run(again.step())
    repair_pass = time.monotonic() - t0
    assert target.read_bytes() == good
    # Floor: a plain loop of atomic writes of the same bytes (temp, fsync, rename, dir fsync).
    contents = [p.read_bytes() for p in sorted((root / "seccomp" / "seccomp-operator" / "bench").iterdir())]
    floor_dir = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    t0 = time.monotonic()
    dfd = os.open(floor_dir, os.O_RDONLY | os.O_DIRECTORY)
    for i, data in enumerate(contents):
        tmp, final = floor_dir / f".tmp-{i}", floor_dir / f"{i}.json"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, final)
        os.fsync(dfd)
    os.close(dfd)
    floor_write = time.monotonic() - t0
    t0 = time.monotonic()
    for i in range(len(contents)):
        (floor_dir / f"{i}.json").read_bytes()
    floor_read = time.monotonic() - t0
    return {
        "profiles": count,
        "install_s": install,
        "verify_s": verify,
        "repair_pass_s": repair_pass,
        "floor_atomic_writes_s": floor_write,
        "floor_reads_s": floor_read,
    }


def controller(count: int, nodes: int) -> dict[str, Any]:
    """Controller memory and the time to compute every status once (no API)."""
    from seccomp_operator import controller_handlers  # noqa: F401  (what the controller imports)
    from seccomp_operator.controller import Controller, ControllerConfig
    from seccomp_operator.profiles import Renderer, snapshot_from_body

    floor_rss = vm("VmRSS")
    ctl = Controller(ControllerConfig(), api=None)  # type: ignore[arg-type]  # no API call is made
    renderer = Renderer()
    entries = {}
    for i in range(count):
        body = body_of(i, errno=1 + i % 100) | {
            "metadata": {"name": f"p-{i}", "namespace": "bench", "uid": str(i)}
        }
        ctl.observe_profile("ADDED", body)
        snap = snapshot_from_body(body)
        r = renderer.render(snap, {snap.key: snap})
        entries[snap.key] = {
            "state": c.NODE_INSTALLED,
            "contentHash": r.sha256,
            "path": f"/x/{i}",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    for n in range(nodes):
        name = f"node-{n}"
        ctl.observe_node("ADDED", {"metadata": {"name": name}})
        ctl.observe_report(
            "ADDED", {"metadata": {"name": name}, "status": {"state": "Ready", "profiles": dict(entries)}}
        )
        ctl.observe_agent_pod(
            "ADDED",
            {
                "metadata": {"namespace": "x", "name": f"a-{n}"},
                "spec": {"nodeName": name},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
        )
    t0 = time.monotonic()
    done = sum(
        1 for key in list(ctl.profiles) if (ctl.compute_status(key) or {}).get("phase") == c.PHASE_INSTALLED
    )
    compute = time.monotonic() - t0
    assert done == count, done
    return {
        "profiles": count,
        "nodes": nodes,
        "compute_all_status_s": compute,
        "rss_peak_mib": vm("VmHWM"),
        "floor_rss_mib": floor_rss,
    }


def main(argv: list[str]) -> int:
    """Run the child named by ``argv[0]`` and print its JSON line."""
    kind, args = argv[0], argv[1:]
    if kind == "import-floor":
        result = import_floor(args[0])
    elif kind == "agent-offline":
        result = agent_offline(int(args[0]))
    elif kind == "controller":
        result = controller(int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"unknown child {kind!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
