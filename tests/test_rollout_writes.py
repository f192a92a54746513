"""Status writes at scale: which writes wait for ``--status-interval`` and which do not, the
incremental index of nodes that have a profile's current content, and the emulator's API
semantics the roles rely on (no event for a write that changes nothing, watches resumed
from a resourceVersion, 410 when it is too old, label selectors).

The controller runs without Kopf against a recording API seam and a fake clock, so no test
here waits for time to pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from seccomp_operator import constants as c
from seccomp_operator import devcluster, rollout
from seccomp_operator.controller import Controller, ControllerConfig
from seccomp_operator.devcluster import DevCluster

SPEC: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["mkdir"]}],
}
NODES = tuple(f"node-{i}" for i in range(1, 9))


class RecordingApi:
    """The controller's API seam: every status write is kept, in order."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any]]] = []

    async def list_nodes(self) -> list[dict[str, Any]]:
        return []

    async def list_agent_pods(self) -> list[dict[str, Any]]:
        return []

    async def list_node_statuses(self) -> list[dict[str, Any]]:
        return []

    async def list_pods(self) -> list[dict[str, Any]]:
        return []

    async def patch_profile_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.writes.append((f"{namespace}/{name}", dict(status)))

    async def delete_node_status(self, name: str) -> None:
        return None

    async def post_event(self, involved: Mapping[str, Any], **_: Any) -> None:
        return None


class Clock:
    """Stands in for the controller's monotonic clock (``Controller.clock``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def profile(name: str, generation: int = 1, errno: int = 1) -> dict[str, Any]:
    spec = {**SPEC, "syscalls": [{**SPEC["syscalls"][0], "errnoRet": errno, "action": "SCMP_ACT_ERRNO"}]}
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROFILE_KIND,
        "metadata": {"namespace": "ns", "name": name, "generation": generation, "uid": f"uid-{name}"},
        "spec": spec,
    }


def controller(interval: float, clock: Clock) -> tuple[Controller, RecordingApi]:
    api = RecordingApi()
    ctl = Controller(ControllerConfig(status_interval=interval), api)
    ctl.clock = clock
    for node in NODES:
        ctl.observe_node(None, {"metadata": {"name": node}})
        ctl.observe_agent_pod(
            None,
            {
                "metadata": {"namespace": "seccomp-operator", "name": f"agent-{node}"},
                "spec": {"nodeName": node},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
        )
    return ctl, api


def report(ctl: Controller, node: str, **entries: str | None) -> None:
    """``node`` reports ``key=hash`` entries (None: the key is not installed)."""
    profiles = {
        f"ns/{k}": {"state": c.NODE_INSTALLED, "contentHash": h} for k, h in entries.items() if h is not None
    }
    ctl.observe_report("MODIFIED", {"metadata": {"name": node}, "status": {"profiles": profiles}})


def expected(ctl: Controller, name: str) -> str:
    content = ctl.verdict(ctl.profiles[f"ns/{name}"].snap).content_hash
    assert content is not None
    return content


async def test_a_new_generation_and_ready_are_written_at_once_progress_waits(clock: Clock) -> None:
    ctl, api = controller(60.0, clock)
    ctl.observe_profile("ADDED", profile("p"))
    await ctl.flush()
    assert [w[1]["observedGeneration"] for w in api.writes] == [1]  # no interval wait for a new generation
    assert api.writes[-1][1]["phase"] == c.PHASE_PROGRESSING

    h = expected(ctl, "p")
    for node in NODES[:-1]:
        report(ctl, node, p=h)
        clock.now += 1
        await ctl.flush()
    assert len(api.writes) == 1  # progress counts wait for the interval

    report(ctl, NODES[-1], p=h)
    await ctl.flush()
    assert len(api.writes) == 2  # Ready on every node: written at once
    assert api.writes[-1][1]["phase"] == c.PHASE_INSTALLED
    assert api.writes[-1][1]["ready"] == f"{len(NODES)}/{len(NODES)}"

    ctl.observe_profile("MODIFIED", profile("p", generation=2, errno=13))
    await ctl.flush()
    assert len(api.writes) == 3  # the new generation does not wait for the interval either
    assert api.writes[-1][1]["observedGeneration"] == 2
    assert api.writes[-1][1]["phase"] == c.PHASE_PROGRESSING


async def test_progress_writes_back_off_until_the_next_immediate_write(clock: Clock) -> None:
    ctl, api = controller(1.0, clock)
    ctl.observe_profile("ADDED", profile("p"))
    await ctl.flush()  # written at 0 (a new generation)
    start, h = clock.now, expected(ctl, "p")
    installs = dict(zip([0.5, 1.0, 1.5, 2.0, 4.0, 6.0, 7.5, 10.0], NODES, strict=True))
    written_at = []
    for tick in range(1, 21):  # every 0.5 s up to 10 s
        t = tick / 2
        clock.now = start + t
        if t in installs:
            report(ctl, installs[t], p=h)
        before = len(api.writes)
        await ctl.flush()
        if len(api.writes) > before:
            written_at.append(t)
    # Progress writes 1, 2 and 4 s after the previous one; Ready (at 10 s) at once.
    assert written_at == [1.0, 3.0, 7.0, 10.0]
    assert [w[1]["ready"] for w in api.writes[1:]] == ["2/8", "4/8", "6/8", "8/8"]
    assert api.writes[-1][1]["phase"] == c.PHASE_INSTALLED


async def test_a_report_recomputes_only_the_profiles_whose_entry_changed(clock: Clock) -> None:
    ctl, _ = controller(1.0, clock)
    for name in ("a", "b"):
        ctl.observe_profile("ADDED", profile(name, errno=2 if name == "a" else 3))
    await ctl.flush()
    ha, hb = expected(ctl, "a"), expected(ctl, "b")
    for node in NODES:
        report(ctl, node, a=None, b=hb)
    clock.now += 5
    await ctl.flush()
    computed: list[str] = []
    real = ctl.compute_status

    def spy(key: str) -> dict[str, Any] | None:
        computed.append(key)
        return real(key)

    ctl.compute_status = spy  # type: ignore[method-assign]
    clock.now += 5
    report(ctl, NODES[0], a=ha, b=hb)
    await ctl.flush()
    assert computed == ["ns/a"]


def test_current_index_follows_reports_one_node_at_a_time() -> None:
    ready = rollout.AgentInfo(ready=True)
    h = "f" * 64

    def view(name: str, content: str | None) -> rollout.NodeView:
        entries = {} if content is None else {"ns/p": {"state": c.NODE_INSTALLED, "contentHash": content}}
        return rollout.NodeView(name, ready, {"state": "Ready", "profiles": entries})

    index = rollout.CurrentIndex()
    index.track("ns/p", h, [view("n1", h), view("n2", "0" * 64), view("n3", None)])
    assert index.count("ns/p") == 1 and index.has("ns/p", "n1")
    index.update("ns/p", view("n2", h))
    index.update("ns/p", view("n3", h))
    assert index.count("ns/p") == 3
    index.update(
        "ns/p", rollout.NodeView("n1", rollout.AgentInfo(ready=False, reason="X"), view("n1", h).report)
    )
    assert index.count("ns/p") == 2 and not index.has(
        "ns/p", "n1"
    )  # an agent that is not ready vouches for nothing
    index.track("ns/p", None, [])
    assert index.count("ns/p") == 0 and index.expected("ns/p") is None


# --- the emulator's API semantics -------------------------------------------------------------

PROFILES = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/ns/{c.PROFILE_PLURAL}"


async def watch_lines(cluster: DevCluster, query: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch of the profiles in ``ns``."""
    out: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{cluster.url}{PROFILES}?watch=true{query}", timeout=aiohttp.ClientTimeout(total=10)
        ) as resp,
    ):
        async for line in resp.content:
            if line.strip():
                out.append(json.loads(line))
            if len(out) >= count:
                break
    return out


@pytest.mark.integration
async def test_emulator_writes_that_change_nothing_make_no_event_and_watches_resume() -> None:
    async with DevCluster() as cluster:
        await cluster.add_namespace("ns")
        await cluster.create(PROFILES, profile("p"))
        listed = await cluster.get(PROFILES)
        since = listed["metadata"]["resourceVersion"]
        rv = listed["items"][0]["metadata"]["resourceVersion"]
        await cluster.patch(f"{PROFILES}/p", {"spec": profile("p")["spec"]})
        assert (await cluster.get(f"{PROFILES}/p"))["metadata"][
            "resourceVersion"
        ] == rv  # no-op: no new version
        await cluster.patch(f"{PROFILES}/p", {"metadata": {"labels": {"tier": "gold"}}})
        await cluster.create(PROFILES, profile("q"))
        # From the list's version: only what came after, not the objects again.
        events = await watch_lines(cluster, f"&resourceVersion={since}", 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("MODIFIED", "p"),
            ("ADDED", "q"),
        ]
        # Without a version: the current objects first, as ADDED.
        events = await watch_lines(cluster, "", 2)
        assert {(e["type"], e["object"]["metadata"]["name"]) for e in events} == {
            ("ADDED", "p"),
            ("ADDED", "q"),
        }
        selected = await cluster.get(f"{PROFILES}?labelSelector=tier%3Dgold")
        assert [i["metadata"]["name"] for i in selected["items"]] == ["p"]


@pytest.mark.integration
async def test_emulator_answers_410_gone_to_a_watch_from_a_forgotten_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devcluster, "WATCH_HISTORY", 5)
    async with DevCluster() as cluster:
        await cluster.add_namespace("ns")
        await cluster.create(PROFILES, profile("p"))
        since = (await cluster.get(PROFILES))["metadata"]["resourceVersion"]
        for i in range(devcluster.WATCH_HISTORY + 1):
            await cluster.patch(f"{PROFILES}/p", {"metadata": {"labels": {"i": str(i)}}})
        events = await watch_lines(cluster, f"&resourceVersion={since}", 1)
        assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
