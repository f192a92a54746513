"""Rollout benchmark on the in-process API emulator (not a test).

Run: ``make bench`` (= ``python bench/rollout.py``: N = 10, 100, 500 simulated nodes,
P = 100 profiles, 5 timed changes per N; about 4.5 minutes on 2 busy cores), or
``python bench/rollout.py --quick`` (N = 10, 100, P = 20, 3 changes, 200 profiles for
the agent runs; about 1.5 minutes).  ``--json`` adds every figure as JSON.  It prints,
per N:

- apply -> Ready (median, p95) for P profiles created in one burst;
- one spec change -> Ready (median and worst of ``--changes`` changes, each started on a
  settled cluster), against the floor measured in the same run on the same emulator: one
  watch event to the fleet plus one node-status write per node;
- the API requests one change causes, by verb and resource (the writes per node and the
  controller's writes), the watch events it delivers to the nodes, and when the node
  reports and the status writes came;

and, once, in child processes (so that each RSS is its own process's):

- the real agent (Kopf, its watch, the API seam) with 1,000 profiles installed: peak RSS
  of ``seccomp-operator agent`` as shipped, and through the lean entry point
  (``bench/lean_agent.py``: no ``kubernetes`` client library, no offline-tool modules),
  with and without ``MALLOC_ARENA_MAX=2``, each against the floor of its imports alone;
- an agent cold start installing 1,000 profiles, then verifying them (a restart),
  against the floor of a plain loop of atomic writes of the same bytes, and one full
  resync pass that repairs a file changed by hand;
- the controller's peak RSS with 1,000 profiles x 100 node reports, and the time to
  compute every status once.

What runs where.  The emulator (:class:`seccomp_operator.devcluster.ClusterEmulator`) and
the real controller (Kopf, its own thread and loop, ``--status-interval``, default 1 s as
in production) run in this process.  The N simulated nodes (the "fleet") run in
``--fleet-procs`` child processes, spread over ``--shards`` threads in all, each thread
with its own event loop, one watch stream of SeccompProfiles and one HTTP connection
pool.  Each node is a real :class:`seccomp_operator.agent.Agent`: its real loop, render,
atomic writes with fsync into its own directory under ``--fleet-dir``, reports through
:class:`seccomp_operator.kube.KubeApi`; it is fed every event of its shard's watch by
``Agent.observe`` instead of by Kopf, and shares the shard's render cache.  So the fleet is
lighter than N Kopf agents (K watch streams instead of N; one JSON decode and one render
per shard, not per node; no inotify watch; no periodic resync), while every node still
receives every event and writes its own files and report.  On a real cluster each node
does that work on its own CPU and disk; here all of it shares two cores and one disk, and
one node's reconcile waits for the others of its shard.  ``--skip-unchanged`` measures
the agent change proposed in docs/scale.md (events that change nothing an agent keeps
are not passed to it).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import platform
import signal
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
from children import agent_config, body_of, errno_of, spec_of, vm  # bench/children.py

from seccomp_operator import constants as c
from seccomp_operator import kube
from seccomp_operator.agent import Agent
from seccomp_operator.agent import _held as agent_held  # what Agent.observe keeps of a body
from seccomp_operator.devcluster import DevCluster, RequestRecord
from seccomp_operator.kube import Endpoint, KubeApi
from seccomp_operator.profiles import Renderer, snapshot_from_body

PROFILES_URL = f"/apis/{c.GROUP}/{c.VERSION}/{c.PROFILE_PLURAL}"
NS_PROFILES_URL = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/bench/{c.PROFILE_PLURAL}"
NODE_STATUS_URL = f"/apis/{c.GROUP}/{c.VERSION}/{c.NODE_STATUS_PLURAL}"


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- the fleet: N simulated nodes in a child process --------------------------------------------


class Shard:
    """Some simulated nodes in one thread with its own loop, one watch stream and one API pool.

    ``null``: the floor's nodes, which render and write nothing: one node-status write
    per node per watch event.  ``skip_unchanged``: an event that changes nothing an
    agent keeps (a status write of the controller, seen by an agent that already has
    the same spec, generation and deletion state) is not passed to that agent, as the
    agent change proposed in docs/scale.md would drop it in ``Agent.observe``.
    """

    def __init__(
        self, url: str, names: list[str], workdir: Path, *, null: bool, skip_unchanged: bool
    ) -> None:
        self.url, self.names, self.workdir, self.null = url, names, workdir, null
        self.skip_unchanged = skip_unchanged
        self.stream_events = 0
        self.deliveries = 0
        self.skipped = 0
        self.connected = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        self.thread = threading.Thread(target=self.loop.run_forever, name="shard", daemon=True)
        self.tasks: list[asyncio.Task[None]] = []
        self.agents: list[Agent] = []

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def synced(self) -> bool:
        return self.connected.is_set() and all(a.synced.is_set() for a in self.agents)

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), read_bufsize=2**20)
        self.api = KubeApi(Endpoint(server=self.url))
        renderer = Renderer()
        if not self.null:
            for name in self.names:
                root = self.workdir / name
                root.mkdir(parents=True, exist_ok=True)
                agent = Agent(agent_config(name, str(root)), self.api)
                agent.renderer = renderer
                self.agents.append(agent)
                self.tasks.append(asyncio.create_task(agent.run()))
        self.tasks.append(asyncio.create_task(self._watch()))

    async def _stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()
        await self.api.aclose()

    async def _watch(self) -> None:
        async with self.session.get(f"{self.url}{PROFILES_URL}", params={"watch": "true"}) as resp:
            self.connected.set()
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                self.stream_events += 1
                if self.null:
                    await self._null_writes(event)
                    continue
                type_, obj = event["type"], event["object"]
                snap = None
                if self.skip_unchanged and type_ == "MODIFIED":
                    with contextlib.suppress(ValueError):
                        snap = agent_held(snapshot_from_body(obj), obj)
                for agent in self.agents:
                    if snap is not None and agent.profiles.get(snap.key) == snap:
                        self.skipped += 1
                        continue
                    agent.observe(type_, obj)
                self.deliveries += len(self.agents)

    async def _null_writes(self, event: dict[str, Any]) -> None:
        meta = event["object"]["metadata"]
        patch = {"status": {"profiles": {meta["name"]: {"seen": meta["resourceVersion"]}}}}
        await asyncio.gather(*(self.api.patch_node_status(name, patch) for name in self.names))
        self.deliveries += len(self.names)


def fleet_child(url: str, names: list[str], workdir: str, shards: int, mode: str) -> None:
    """One fleet process: start, say when synced, answer ``count``, exit on ``stop`` (stdin).

    ``mode``: ``null`` (the floor), ``agents`` (every event to every agent) or
    ``agents-skip`` (see :class:`Shard`).
    """
    import logging

    logging.basicConfig(level=logging.WARNING if os.environ.get("BENCH_FLEET_LOG") else logging.ERROR)
    # Many simulated nodes share one event loop here, so an answer can wait behind other
    # nodes' work for longer than a real agent ever waits; a 30 s timeout would then fail
    # reports that the API server did answer (and each failure costs a full resync).
    kube.REQUEST_TIMEOUT = 600.0
    parts = [names[i::shards] for i in range(min(shards, len(names)))]
    fleet = [
        Shard(url, part, Path(workdir), null=mode == "null", skip_unchanged=mode == "agents-skip")
        for part in parts
    ]
    for shard in fleet:
        shard.start()
    while not all(s.synced() for s in fleet):
        time.sleep(0.05)
    print(json.dumps({"synced": True}), flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            counts = {
                "stream_events": sum(s.stream_events for s in fleet),
                "deliveries": sum(s.deliveries for s in fleet),
                "skipped": sum(s.skipped for s in fleet),
            }
            print(json.dumps(counts), flush=True)
        elif line.strip() == "stop":
            break
    for shard in fleet:
        shard.stop()


class Fleet:
    """The parent's handle on the fleet: ``procs`` child processes, nodes dealt round-robin."""

    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    @classmethod
    async def start(
        cls, url: str, count: int, workdir: Path, args: argparse.Namespace, *, mode: str, timeout: float
    ) -> Fleet:
        names = [f"node-{i:04d}" for i in range(count)]
        nprocs = max(1, min(args.fleet_procs, count))
        procs = []
        for k in range(nprocs):
            mine = ",".join(names[k::nprocs])
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--child",
                    "fleet",
                    url,
                    mine,
                    str(workdir),
                    str(max(1, args.shards // nprocs)),
                    mode,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        fleet = cls(procs)
        try:
            await asyncio.wait_for(asyncio.gather(*(fleet._read(p) for p in procs)), timeout)
        except TimeoutError:
            await fleet.stop()
            raise TimeoutError(f"{count} simulated nodes not synced within {timeout:g}s") from None
        return fleet

    @staticmethod
    async def _read(proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("a fleet process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def counts(self) -> dict[str, int]:
        """Watch events so far: on the fleet's streams, delivered to nodes, skipped (see Shard)."""
        total: Counter[str] = Counter()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"count\n")
            await proc.stdin.drain()
            total.update({k: int(v) for k, v in (await self._read(proc)).items()})
        return dict(total)

    def cpu_seconds(self) -> float:
        """CPU time (user + system, seconds) the fleet's processes have used so far."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                assert proc.stdin is not None
                with contextlib.suppress(ConnectionError):
                    proc.stdin.write(b"stop\n")
                    await proc.stdin.drain()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --- one N ------------------------------------------------------------------------------------


class ReadyWatch:
    """The benchmark's own watch of the profiles: when each (name, generation) became Installed n/n."""

    def __init__(self, url: str, nodes: int) -> None:
        self.url, self.nodes = url, nodes
        self.ready: dict[tuple[str, int], float] = {}
        self._changed = asyncio.Event()

    async def __aenter__(self) -> ReadyWatch:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), read_bufsize=2**20)
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.session.close()

    async def _run(self) -> None:
        want = f"{self.nodes}/{self.nodes}"
        async with self.session.get(f"{self.url}{NS_PROFILES_URL}", params={"watch": "true"}) as resp:
            async for line in resp.content:
                if not line.strip():
                    continue
                obj = json.loads(line)["object"]
                st = obj.get("status") or {}
                if st.get("phase") == c.PHASE_INSTALLED and st.get("ready") == want:
                    key = (obj["metadata"]["name"], int(st.get("observedGeneration") or 0))
                    self.ready.setdefault(key, time.monotonic())
                    self._changed.set()

    async def wait(self, keys: list[tuple[str, int]], deadline: float) -> dict[tuple[str, int], float]:
        """Wait until every (name, generation) is Ready; their times (``time.monotonic``)."""
        while missing := [k for k in keys if k not in self.ready]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not Ready in time: {missing[:5]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)
        return {k: self.ready[k] for k in keys}


async def quiet(cluster: DevCluster, fleet: Fleet | None = None, seconds: float = 0.5) -> None:
    """Wait until the cluster is settled for ``seconds``: no request reached the emulator, no
    watch event waits to be written, the fleet received no new event and its processes used
    less than a tenth of a CPU (agents may still work through events already received)."""

    async def state() -> tuple[int, int]:
        events = (await fleet.counts())["stream_events"] if fleet is not None else 0
        return cluster.emulator.request_count, events

    while True:
        before, cpu = await state(), fleet.cpu_seconds() if fleet is not None else 0.0
        await asyncio.sleep(seconds)
        busy = (fleet.cpu_seconds() - cpu) if fleet is not None else 0.0
        if await state() == before and not cluster.emulator.pending_events and busy < 0.1 * seconds:
            return


def by_verb(requests: list[RequestRecord]) -> Counter[str]:
    """``"PATCH seccompnodestatuses"`` -> count (``/status`` for the subresource, ``?watch`` for streams)."""
    out: Counter[str] = Counter()
    for r in requests:
        sub = f"/{r.subresource}" if r.subresource else ""
        out[f"{r.method} {r.plural or '-'}{sub}{'?watch' if r.watch else ''}"] += 1
    return out


async def floor_round_trip(n: int, workdir: Path, args: argparse.Namespace, repeats: int = 5) -> float:
    """Median time for one watch event to reach the fleet and each node to write its status once."""
    async with DevCluster() as cluster:
        await cluster.add_namespace("bench")
        for i in range(n):
            body = {
                "apiVersion": c.API_VERSION,
                "kind": c.NODE_STATUS_KIND,
                "metadata": {"name": f"node-{i:04d}"},
            }
            await cluster.create(NODE_STATUS_URL, body)
        fleet = await Fleet.start(cluster.url, n, workdir, args, mode="null", timeout=args.timeout)
        times = []
        try:
            for r in range(repeats):
                start = cluster.emulator.request_count
                t0 = time.monotonic()
                await cluster.create(NS_PROFILES_URL, body_of(r))
                while sum(1 for q in cluster.emulator.requests_since(start) if q.method == "PATCH") < n:
                    await asyncio.sleep(0.001)
                times.append(time.monotonic() - t0)
        finally:
            await fleet.stop()
    return statistics.median(times)


async def run_n(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Burst, changes and floor for N simulated nodes; see the module docstring."""
    p, timeout = args.profiles, args.timeout
    out: dict[str, Any] = {"nodes": n, "profiles": p}
    async with DevCluster() as cluster:
        await cluster.add_namespace("bench")
        for i in range(n):
            await cluster.add_node(f"node-{i:04d}")
            await cluster.set_agent_pod(f"node-{i:04d}", ready=True)
        await cluster.start_controller(status_interval=args.status_interval)
        t0 = time.monotonic()
        mode = "agents-skip" if args.skip_unchanged else "agents"
        fleet = await Fleet.start(cluster.url, n, workdir / f"n{n}", args, mode=mode, timeout=timeout)
        out["fleet_start_s"] = time.monotonic() - t0
        try:
            async with ReadyWatch(cluster.url, n) as watch:
                await asyncio.sleep(0.2)  # the bench's watch is connected (bench only)
                applied: dict[tuple[str, int], float] = {}
                for i in range(p):
                    applied[(f"bench-{i}", 1)] = time.monotonic()
                    await cluster.create(NS_PROFILES_URL, body_of(i))
                ready = await watch.wait(list(applied), time.monotonic() + timeout)
                lat = [ready[k] - applied[k] for k in applied]
                out["apply_ready_median_s"] = statistics.median(lat)
                out["apply_ready_p95_s"] = pct(lat, 95)
                out["burst_all_ready_s"] = max(ready.values()) - min(applied.values())

                changes, per_change = [], []
                for r in range(args.changes):
                    i, gen = r % p, 2 + r // p
                    await quiet(cluster, fleet)
                    before_req, before_ev = cluster.emulator.request_count, await fleet.counts()
                    old, new = spec_of(i, errno=errno_of(gen - 1)), spec_of(i, errno=errno_of(gen))
                    t1 = time.monotonic()
                    patch = {"spec": {**{k: None for k in old if k not in new}, **new}}
                    await cluster.patch(f"{NS_PROFILES_URL}/bench-{i}", patch)
                    done = await watch.wait([(f"bench-{i}", gen)], time.monotonic() + timeout)
                    changes.append(done[(f"bench-{i}", gen)] - t1)
                    await quiet(cluster, fleet)
                    after_ev = await fleet.counts()
                    served = cluster.emulator.requests_since(before_req)
                    counted = by_verb(served)
                    counted["PATCH seccompprofiles"] -= 1  # the change itself
                    per_change.append(
                        {
                            "timeline": timeline(served, t1),
                            "requests": dict(sorted((+counted).items())),
                            "stream_events": after_ev["stream_events"] - before_ev["stream_events"],
                            "deliveries": after_ev["deliveries"] - before_ev["deliveries"],
                            "skipped": after_ev.get("skipped", 0) - before_ev.get("skipped", 0),
                        }
                    )
                out["change_ready_s"] = changes
                out["change_ready_median_s"] = statistics.median(changes)
                out["change_ready_max_s"] = max(changes)
                out["per_change"] = per_change
        finally:
            await fleet.stop()
    out["floor_event_plus_writes_s"] = await floor_round_trip(n, workdir / f"floor{n}", args)
    return out


def timeline(served: list[RequestRecord], t0: float) -> dict[str, float]:
    """When, after the change (``t0``), the node reports started and ended and the status writes came.

    Keys: ``first_node_write_s``, ``last_node_write_s``, ``status_writes_s`` (a list), all
    in seconds after ``t0``.
    """
    nodes = [r.at - t0 for r in served if r.method == "PATCH" and r.plural == c.NODE_STATUS_PLURAL]
    status = [round(r.at - t0, 3) for r in served if r.method == "PATCH" and r.subresource == "status"]
    return {
        "first_node_write_s": round(min(nodes, default=0.0), 3),
        "last_node_write_s": round(max(nodes, default=0.0), 3),
        "status_writes_s": status,  # type: ignore[dict-item]
    }


def describe_change(r: dict[str, Any]) -> str:
    """``N node writes + M controller writes (...)`` for the worst change of a run."""
    worst = max(r["per_change"], key=lambda x: sum(x["requests"].values()))
    reqs: dict[str, int] = worst["requests"]
    node_writes = sum(v for k, v in reqs.items() if k.split()[0] != "GET" and c.NODE_STATUS_PLURAL in k)
    writes = sum(v for k, v in reqs.items() if k.split()[0] != "GET")
    reads = sum(v for k, v in reqs.items() if k.split()[0] == "GET" and not k.endswith("?watch"))
    restarts = sum(v for k, v in reqs.items() if k.endswith("?watch"))
    also = f" (+{restarts} watch restarts: Kopf's 300 s server timeout)" if restarts else ""
    return (
        f"{writes} writes = {node_writes} node reports + {writes - node_writes} controller writes, "
        f"{reads} reads{also}; {reqs}; {worst['deliveries']} watch events to the nodes "
        f"({worst['stream_events']} on the fleet's {r.get('shards', '?')} streams; "
        f"{worst.get('skipped', 0)} skipped as changing nothing)"
    )


def describe_timeline(r: dict[str, Any]) -> str:
    """The median change's timeline: node reports from .. to .., status writes at .."""
    order = sorted(range(len(r["change_ready_s"])), key=lambda i: r["change_ready_s"][i])
    tl = r["per_change"][order[len(order) // 2]]["timeline"]
    writes = ", ".join(f"{t:.2f}" for t in tl["status_writes_s"])
    return (
        f"node reports arrive {tl['first_node_write_s']:.2f}s .. {tl['last_node_write_s']:.2f}s "
        f"after the change; status writes at {writes}s"
    )


# --- child processes: the real agent, cold start, controller -------------------------------------


async def measure_agent_role(variant: str, count: int, workdir: Path) -> dict[str, Any]:
    """Run the real agent with ``count`` profiles until it reported them all; its RSS.

    ``variant``: ``shipped`` (the ``seccomp-operator agent`` command), ``lean``
    (``bench/lean_agent.py``), ``lean+arena`` (the same with ``MALLOC_ARENA_MAX=2``).
    """
    async with DevCluster() as cluster:
        await cluster.add_namespace("bench")
        await cluster.add_node("rss-node")
        for i in range(count):
            await cluster.create(
                NS_PROFILES_URL,
                body_of(i, errno=1 + i % 100) | {"metadata": {"name": f"p-{i}", "namespace": "bench"}},
            )
        root = workdir / f"rss-{variant}"
        root.mkdir(parents=True)
        env = dict(os.environ)
        if variant.endswith("+arena"):
            env["MALLOC_ARENA_MAX"] = "2"
        if variant == "shipped":
            exe = Path(sys.executable).with_name("seccomp-operator")
            cmd = [
                str(exe),
                "agent",
                "--server",
                cluster.url,
                "--node-name",
                "rss-node",
                "--kubelet-root",
                str(root),
                "--resync-seconds",
                "3600",
                "--no-remove-taint",
            ]
        else:
            lean = Path(__file__).with_name("lean_agent.py")
            cmd = [sys.executable, str(lean), cluster.url, "rss-node", str(root)]
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        floor = None
        try:
            if variant != "shipped":
                assert proc.stdout is not None
                floor = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))["floor_rss_mib"]
            t0 = time.monotonic()
            while True:
                report = await cluster.get_node_status("rss-node")
                if int(((report or {}).get("status") or {}).get("installed") or 0) >= count:
                    break
                if time.monotonic() - t0 > 300:
                    raise TimeoutError(f"agent ({variant}) did not install {count} profiles in 300 s")
                await asyncio.sleep(0.2)
            installed_s = time.monotonic() - t0
            await asyncio.sleep(1.0)  # settle
            out = {
                "variant": variant,
                "rss_peak_mib": vm("VmHWM", proc.pid),
                "rss_mib": vm("VmRSS", proc.pid),
                "floor_rss_mib": floor,
                "installed_s": installed_s,
            }
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return out


def run_child(kind: str, *args: str) -> dict[str, Any]:
    """One measurement of ``bench/children.py`` in a process of its own; its JSON line."""
    cmd = [sys.executable, str(Path(__file__).with_name("children.py")), kind, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


# --- main -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python, kernel, and the load average now (1, 5, 15 min)."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--nodes", default=None, help="comma-separated N (default 10,100,500; --quick 10,100)"
    )
    parser.add_argument(
        "--profiles", type=int, default=None, help="P profiles in the burst (default 100; --quick 20)"
    )
    parser.add_argument(
        "--changes", type=int, default=None, help="spec changes timed per N (default 5; --quick 3)"
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=1.0,
        help="controller --status-interval in s (default 1, its default)",
    )
    parser.add_argument(
        "--shards", type=int, default=8, help="threads (and watch streams) of the fleet (default 8)"
    )
    parser.add_argument(
        "--fleet-procs", type=int, default=2, help="processes the fleet's shards run in (default 2)"
    )
    parser.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="do not pass a simulated agent the events that change nothing it keeps (the agent "
        "change proposed in docs/scale.md; default: every event to every agent, as agent.py does)",
    )
    parser.add_argument(
        "--installed", type=int, default=None, help="profiles for the agent runs (default 1000)"
    )
    parser.add_argument(
        "--fleet-dir", default=None, help="where the simulated nodes' kubelet roots go (default: a temp dir)"
    )
    parser.add_argument("--quick", action="store_true", help="N = 10,100, P = 20, 3 changes, 200 installed")
    parser.add_argument("--skip-agent", action="store_true", help="skip the agent and controller child runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for Ready per N")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "fleet":
        url, names, workdir, shards, mode = args.child_args
        fleet_child(url, names.split(","), workdir, int(shards), mode)
        return 0

    args.nodes = args.nodes or ("10,100" if args.quick else "10,100,500")
    args.profiles = args.profiles or (20 if args.quick else 100)
    args.changes = args.changes or (3 if args.quick else 5)
    args.installed = args.installed or (200 if args.quick else 1000)

    import logging

    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "runs": []}
    m = results["machine"]
    print(
        f"machine: nproc={m['nproc']}, {m['cpu']}, {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"Linux {m['kernel']}; load average at start {m['loadavg']}"
    )
    skip = (
        "events that change nothing an agent keeps not passed on (--skip-unchanged)"
        if args.skip_unchanged
        else "every event to every agent"
    )
    print(
        f"controller --status-interval {args.status_interval:g}s; fleet: {args.fleet_procs} processes, "
        f"{args.shards} shards, {skip}; burst P={args.profiles}; {args.changes} changes per N"
    )
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.fleet_dir) as tmp:
        for n in [int(x) for x in args.nodes.split(",") if x]:
            t0 = time.monotonic()
            try:
                r = asyncio.run(run_n(n, args, Path(tmp)))
            except TimeoutError as e:
                print(f"N={n:4d}: not Ready within --timeout {args.timeout:g}s ({e}); stopped here")
                results["runs"].append({"nodes": n, "timeout": str(e)})
                break
            r["wall_s"] = time.monotonic() - t0
            r["shards"] = min(args.shards, n)
            results["runs"].append(r)
            floor = r["floor_event_plus_writes_s"]
            med = r["change_ready_median_s"]
            print(
                f"N={n:4d} P={r['profiles']}: apply->Ready median {r['apply_ready_median_s']:.2f}s "
                f"p95 {r['apply_ready_p95_s']:.2f}s "
                f"(all {r['profiles']} Ready after {r['burst_all_ready_s']:.1f}s); "
                f"one change -> Ready median {med:.3f}s, worst {r['change_ready_max_s']:.3f}s "
                f"= {med / floor:.1f}x floor {floor:.3f}s (1 event to the fleet + N node writes); "
                f"bench wall {r['wall_s']:.0f}s"
            )
            print(f"        one change: {describe_change(r)}")
            print(f"        median change: {describe_timeline(r)}")
    if not args.skip_agent:
        with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
            floor_shipped = run_child("import-floor", "agent")
            results["agent_import_floor"] = floor_shipped
            roles_rss = []
            for variant in ("shipped", "lean", "lean+arena"):
                a = asyncio.run(measure_agent_role(variant, args.installed, Path(tmp)))
                if a["floor_rss_mib"] is None:
                    a["floor_rss_mib"] = floor_shipped["floor_rss_mib"]
                roles_rss.append(a)
                print(
                    f"agent ({variant}), {args.installed} profiles installed in {a['installed_s']:.1f}s: "
                    f"peak RSS {a['rss_peak_mib']:.1f} MiB, RSS {a['rss_mib']:.1f} MiB "
                    f"(floor {a['floor_rss_mib']:.1f} MiB: interpreter + imports)"
                )
            results["agent_roles"] = roles_rss
        a = run_child("agent-offline", str(args.installed))
        results["agent"] = a
        print(
            f"agent, {a['profiles']} profiles: cold start install {a['install_s']:.2f}s "
            f"({a['install_s'] / a['floor_atomic_writes_s']:.1f}x floor {a['floor_atomic_writes_s']:.2f}s "
            "of plain atomic writes); "
            f"restart verify {a['verify_s']:.2f}s "
            f"({a['verify_s'] / max(a['floor_reads_s'], 1e-9):.0f}x floor "
            f"{a['floor_reads_s']:.3f}s of plain reads); repair pass {a['repair_pass_s']:.2f}s"
        )
        ctl = run_child("controller", str(args.installed), "100")
        results["controller"] = ctl
        print(
            f"controller, {ctl['profiles']} profiles x {ctl['nodes']} node reports: peak RSS "
            f"{ctl['rss_peak_mib']:.0f} MiB (floor {ctl['floor_rss_mib']:.0f} MiB); every status computed in "
            f"{ctl['compute_all_status_s']:.2f}s"
        )
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_s"] = time.monotonic() - started
    print(f"total {results['total_s']:.0f}s; load average at the end {results['loadavg_end']}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
