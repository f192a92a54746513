"""Rollout benchmark on the in-process API emulator (not a test).

Run: ``make bench`` (= ``python bench/rollout.py``); ``--nodes 10,100`` and
``--profiles 20`` shrink it.  It prints, per N simulated nodes:

- apply -> Ready (median, p95) for P profiles created in one burst, and the floor: the
  emulator's round trip of one watch event to N watchers plus N status writes;
- API requests by verb and resource for one spec change, and the watch events the
  simulated nodes received for it;

and, once, in child processes (so each RSS is its own process's):

- agent cold start installing 1,000 profiles, then verifying them (a restart), against
  the floor of a plain loop of atomic writes of the same bytes;
- agent and controller peak RSS with 1,000 profiles (controller: also 100 node reports
  each listing all 1,000), against the floor of the same imports without data;
- one full resync pass over 1,000 files that repairs a file changed by hand (the agent
  repairs at its next resync, every ``--resync-seconds``; this is the cost of a pass).

Simulated nodes: each is a real :class:`seccomp_operator.agent.Agent` (real render,
real atomic writes into its own temporary directory, real reports through
``KubeApi``) fed by its own watch stream of SeccompProfiles instead of Kopf.  All
simulated nodes share one event loop (in one thread) and one render cache: on a real
cluster each node renders in parallel on its own CPU, here they would only queue on
the same two cores.  The controller is the real one, with Kopf, in its own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from seccomp_operator import constants as c
from seccomp_operator.agent import Agent, AgentConfig
from seccomp_operator.devcluster import DevCluster, RequestRecord
from seccomp_operator.kube import KubeApi
from seccomp_operator.profiles import Renderer

PROFILES_URL = f"/apis/{c.GROUP}/{c.VERSION}/{c.PROFILE_PLURAL}"
#: The benchmark's own polling GETs of the profile list (subtracted from the request counts).
BENCH_GETS = [0]


def spec_of(i: int, errno: int = 1) -> dict[str, Any]:
    """A small distinct profile (one ERRNO rule; ``i`` varies the syscall set)."""
    names = ["mkdir", "mkdirat", "rmdir", "unlinkat", "chmod", "fchmod", "chown", "fchown"]
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": errno, "names": names[: 1 + i % len(names)]}],
        "architectures": ["SCMP_ARCH_X86_64"],
    }


def body_of(i: int, errno: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROFILE_KIND,
        "metadata": {"name": f"bench-{i}", "namespace": "bench"},
        "spec": spec_of(i, errno),
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def vm(field: str) -> float:
    """``VmRSS``/``VmHWM`` of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- simulated nodes -------------------------------------------------------------------------


class Nodes:
    """N simulated nodes in one thread with its own loop (see the module docstring)."""

    def __init__(self, cluster: DevCluster, names: list[str], workdir: Path, *, null: bool = False) -> None:
        self.cluster, self.names, self.workdir, self.null = cluster, names, workdir, null
        self.events = 0
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=64))
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim-nodes", daemon=True)
        self.tasks: list[asyncio.Task[None]] = []
        self.agents: dict[str, Agent] = {}
        self.null_done: dict[str, asyncio.Event] = {}
        self.renderer = Renderer()

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        )
        self.api = KubeApi(self.cluster.endpoint)  # one HTTP pool for all simulated nodes
        for name in self.names:
            if self.null:
                self.tasks.append(asyncio.create_task(self._watch(name, None)))
                continue
            root = self.workdir / name
            root.mkdir(parents=True, exist_ok=True)
            cfg = AgentConfig(node_name=name, kubelet_root=str(root), resync_seconds=3600, remove_taint=False)
            agent = Agent(cfg, self.api)
            agent.renderer = self.renderer
            self.agents[name] = agent
            self.tasks.append(asyncio.create_task(agent.run()))
            self.tasks.append(asyncio.create_task(self._watch(name, agent)))

    async def _stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()
        self.api.close()

    async def _watch(self, name: str, agent: Agent | None) -> None:
        url = f"{self.cluster.url}{PROFILES_URL}?watch=true"
        async with self.session.get(url) as resp:
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                self.events += 1
                if agent is not None:
                    agent.observe(event["type"], event["object"])
                else:
                    await self._null_write(name, event)

    async def _null_write(self, name: str, event: dict[str, Any]) -> None:
        """The floor's node: one status write per event, nothing rendered or written to disk."""
        meta = event["object"]["metadata"]
        await self.api.patch_node_status(
            name, {"status": {"profiles": {meta["name"]: {"seen": meta["uid"]}}}}
        )
        done = self.null_done.get(meta["name"])
        if done is not None:
            done.set()


# --- one N ------------------------------------------------------------------------------------


async def wait_ready(
    cluster: DevCluster, names: list[str], n: int, generation: int, deadline: float
) -> dict[str, float]:
    """Poll the profile list until every name is Installed n/n at ``generation``; return ready times."""
    ready: dict[str, float] = {}
    want = set(names)
    while want - set(ready):
        BENCH_GETS[0] += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"not Ready in time: {sorted(want - set(ready))[:5]}")
        items = (await cluster.get(f"/apis/{c.GROUP}/{c.VERSION}/namespaces/bench/{c.PROFILE_PLURAL}"))[
            "items"
        ]
        now = time.monotonic()
        for item in items:
            nm = item["metadata"]["name"]
            st = item.get("status") or {}
            if (
                nm in want
                and nm not in ready
                and st.get("phase") == c.PHASE_INSTALLED
                and st.get("ready") == f"{n}/{n}"
                and st.get("observedGeneration") == generation
            ):
                ready[nm] = now
        await asyncio.sleep(0.02)  # benchmark sampling period, not synchronisation
    return ready


async def quiet(cluster: DevCluster, seconds: float = 1.0) -> None:
    """Wait until no request reached the emulator for ``seconds``."""
    last, since = len(cluster.emulator.requests), time.monotonic()
    while time.monotonic() - since < seconds:
        await asyncio.sleep(0.1)
        now = len(cluster.emulator.requests)
        if now != last:
            last, since = now, time.monotonic()


def by_verb(requests: list[RequestRecord]) -> Counter[str]:
    """``"PATCH seccompnodestatuses"`` -> count (``/status`` for the subresource, ``?watch`` for streams)."""
    out: Counter[str] = Counter()
    for r in requests:
        sub = f"/{r.subresource}" if r.subresource else ""
        out[f"{r.method} {r.plural or '-'}{sub}{'?watch' if r.watch else ''}"] += 1
    return out


async def floor_round_trip(n: int, workdir: Path, repeats: int = 5) -> float:
    """Median time for one event to reach N watchers and each to write its node status once."""
    async with DevCluster() as cluster:
        await cluster.add_namespace("bench")
        names = [f"floor-{i}" for i in range(n)]
        for nm in names:
            await cluster.create(
                f"/apis/{c.GROUP}/{c.VERSION}/{c.NODE_STATUS_PLURAL}",
                {"apiVersion": c.API_VERSION, "kind": c.NODE_STATUS_KIND, "metadata": {"name": nm}},
            )
        nodes = Nodes(cluster, names, workdir, null=True)
        nodes.start()
        times = []
        try:
            await asyncio.sleep(0.5)  # let the N watch streams connect (bench only)
            for r in range(repeats):
                start_requests = len(cluster.emulator.requests)
                t0 = time.monotonic()
                await cluster.create(
                    f"/apis/{c.GROUP}/{c.VERSION}/namespaces/bench/{c.PROFILE_PLURAL}", body_of(r)
                )
                while len(cluster.emulator.requests) - start_requests < n + 1:
                    await asyncio.sleep(0.002)
                times.append(time.monotonic() - t0)
        finally:
            nodes.stop()
    return statistics.median(times)


async def run_n(n: int, p: int, workdir: Path, status_interval: float, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": n, "profiles": p}
    async with DevCluster() as cluster:
        await cluster.add_namespace("bench")
        names = [f"node-{i:04d}" for i in range(n)]
        for nm in names:
            await cluster.add_node(nm)
            await cluster.set_agent_pod(nm, ready=True)
        await cluster.start_controller(status_interval=status_interval)
        nodes = Nodes(cluster, names, workdir / f"n{n}")
        t0 = time.monotonic()
        nodes.start()
        while not all(a.synced.is_set() for a in nodes.agents.values()):
            if time.monotonic() - t0 > timeout:
                nodes.stop()
                raise TimeoutError(f"{n} simulated nodes not synced within {timeout:g}s")
            await asyncio.sleep(0.05)
        out["nodes_start_s"] = time.monotonic() - t0
        try:
            applied: dict[str, float] = {}
            for i in range(p):
                applied[f"bench-{i}"] = time.monotonic()
                await cluster.create(
                    f"/apis/{c.GROUP}/{c.VERSION}/namespaces/bench/{c.PROFILE_PLURAL}", body_of(i)
                )
            ready = await wait_ready(cluster, list(applied), n, 1, time.monotonic() + timeout)
            lat = [ready[k] - applied[k] for k in applied]
            out["apply_ready_median_s"] = statistics.median(lat)
            out["apply_ready_p95_s"] = pct(lat, 95)
            out["burst_all_ready_s"] = max(ready.values()) - min(applied.values())

            # One spec change: requests and watch events it causes.
            await quiet(cluster)
            before_req, before_ev, before_gets = len(cluster.emulator.requests), nodes.events, BENCH_GETS[0]
            t1 = time.monotonic()
            await cluster.replace_spec("bench", "bench-0", spec_of(0, errno=13))
            await wait_ready(cluster, ["bench-0"], n, 2, time.monotonic() + timeout)
            out["change_ready_s"] = time.monotonic() - t1
            await quiet(cluster)
            reqs = cluster.emulator.requests[before_req:]
            counted = by_verb(reqs)
            counted["GET seccompprofiles"] -= BENCH_GETS[0] - before_gets  # the benchmark's own polling
            counted = +counted  # drop zero counts
            out["change_requests"] = dict(sorted(counted.items()))
            out["change_requests_total"] = sum(counted.values())
            out["change_watch_events_to_nodes"] = nodes.events - before_ev
        finally:
            nodes.stop()
    out["floor_event_plus_writes_s"] = await floor_round_trip(n, workdir / f"floor{n}")
    return out


# --- child processes: cold start, RSS, repair ---------------------------------------------------


def child_agent(count: int) -> dict[str, Any]:
    import kopf  # noqa: F401  (the agent process imports them; part of the floor)
    import kubernetes  # noqa: F401

    floor_rss = vm("VmRSS")
    root = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    bodies = [
        body_of(i, errno=1 + i % 100) | {"metadata": {"name": f"p-{i}", "namespace": "bench"}}
        for i in range(count)
    ]
    agent = Agent(AgentConfig(node_name="bench", kubelet_root=str(root)), None)
    for b in bodies:
        agent.observe(None, b)
    t0 = time.monotonic()
    asyncio.run(agent.step())
    install = time.monotonic() - t0
    assert agent.report.status(agent.cfg)["installed"] == count, agent.report.status(agent.cfg)["failed"]
    # A restart: a fresh agent verifies every file (bytes already match: no write).
    again = Agent(AgentConfig(node_name="bench", kubelet_root=str(root)), None)
    for b in bodies:
        again.observe(None, b)
    t0 = time.monotonic()
    asyncio.run(again.step())
    verify = time.monotonic() - t0
    # Repair: change one file by hand; one full resync pass restores it.
    target = root / "seccomp" / "seccomp-operator" / "bench" / "p-7.json"
    good = target.read_bytes()
    target.write_bytes(b"{}")
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
        "rss_peak_mib": vm("VmHWM"),
        "floor_rss_mib": floor_rss,
    }


def child_controller(count: int, nodes: int) -> dict[str, Any]:
    import kopf  # noqa: F401
    import kubernetes  # noqa: F401

    from seccomp_operator.controller import Controller, ControllerConfig
    from seccomp_operator.profiles import snapshot_from_body

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


def run_child(kind: str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


# --- main -------------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    py = platform.python_version()
    return f"{os.cpu_count()} CPUs ({model}), {mem:.0f} GiB RAM, Python {py}, {platform.system()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="10,100,500", help="comma-separated N (default 10,100,500)")
    parser.add_argument(
        "--profiles", type=int, default=100, help="P profiles applied in one burst (default 100)"
    )
    parser.add_argument("--status-interval", type=float, default=0.1, help="controller --status-interval (s)")
    parser.add_argument("--installed", type=int, default=1000, help="profiles for the RSS / cold-start runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for Ready per N")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "agent":
        print(json.dumps(child_agent(int(args.child_args[0]))))
        return 0
    if args.child == "controller":
        print(json.dumps(child_controller(int(args.child_args[0]), int(args.child_args[1]))))
        return 0

    import logging

    logging.basicConfig(level=logging.ERROR)
    print(f"machine: {machine()}")
    results: dict[str, Any] = {"machine": machine(), "status_interval_s": args.status_interval, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for n in [int(x) for x in args.nodes.split(",") if x]:
            t0 = time.monotonic()
            try:
                r = asyncio.run(run_n(n, args.profiles, Path(tmp), args.status_interval, args.timeout))
            except TimeoutError as e:
                print(f"N={n:4d}: not Ready within --timeout {args.timeout:g}s ({e}); capped here")
                results["runs"].append({"nodes": n, "timeout": str(e)})
                break
            r["wall_s"] = time.monotonic() - t0
            results["runs"].append(r)
            floor = r["floor_event_plus_writes_s"]
            print(
                f"N={n:4d} P={r['profiles']}: apply->Ready median {r['apply_ready_median_s']:.3f}s "
                f"p95 {r['apply_ready_p95_s']:.3f}s (burst of {r['profiles']} all Ready in "
                f"{r['burst_all_ready_s']:.2f}s); one change Ready in {r['change_ready_s']:.3f}s "
                f"= {r['change_ready_s'] / floor:.1f}x floor {floor:.3f}s (1 event to N watchers + N writes)"
            )
            print(
                f"        one change: {r['change_requests_total']} API requests "
                f"{r['change_requests']}; {r['change_watch_events_to_nodes']} watch events to the nodes; "
                f"bench wall {r['wall_s']:.0f}s"
            )
    a = run_child("agent", str(args.installed))
    results["agent"] = a
    print(
        f"agent, {a['profiles']} profiles: cold start install {a['install_s']:.2f}s "
        f"({a['install_s'] / a['floor_atomic_writes_s']:.1f}x floor {a['floor_atomic_writes_s']:.2f}s "
        "of plain atomic writes); "
        f"restart verify {a['verify_s']:.2f}s ({a['verify_s'] / max(a['floor_reads_s'], 1e-9):.0f}x floor "
        f"{a['floor_reads_s']:.3f}s of plain reads); repair pass {a['repair_pass_s']:.2f}s; "
        f"peak RSS {a['rss_peak_mib']:.0f} MiB (floor {a['floor_rss_mib']:.0f} MiB: interpreter + imports)"
    )
    ctl = run_child("controller", str(args.installed), "100")
    results["controller"] = ctl
    print(
        f"controller, {ctl['profiles']} profiles x {ctl['nodes']} node reports: peak RSS "
        f"{ctl['rss_peak_mib']:.0f} MiB (floor {ctl['floor_rss_mib']:.0f} MiB); every status computed in "
        f"{ctl['compute_all_status_s']:.2f}s"
    )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
