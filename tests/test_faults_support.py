"""Fault-injection helpers (no tests here) shared by the fault, safety and soak tests.

:class:`FakeApi` is an :class:`agent.AgentApi` test double whose API can be taken
down (every call raises ``ApiError(0, ...)`` as :class:`kube.KubeApi` does when the
server is unreachable) and brought back; it records every node report it accepts.
:func:`profile_body` builds SeccompProfile bodies as the API serves them.
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seccomp_operator import paths
from seccomp_operator.agent import Agent, AgentConfig
from seccomp_operator.kube import ApiError
from seccomp_operator.profiles import Renderer, snapshot_from_body


def spec(errno: int = 1, *names: str) -> dict[str, Any]:
    """A valid SeccompProfile spec that denies ``names`` (default ``mkdir``) with ``errno``."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": errno, "names": list(names or ("mkdir",))}],
    }


def profile_body(namespace: str, name: str, spec_: Mapping[str, Any], **meta: Any) -> dict[str, Any]:
    """A SeccompProfile body as the API serves it (``meta`` is merged into metadata)."""
    return {
        "apiVersion": "seccomp-operator.dev/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"namespace": namespace, "name": name, "generation": 1, **meta},
        "spec": copy.deepcopy(dict(spec_)),
    }


def rendered(body: Mapping[str, Any]) -> bytes:
    """The bytes an agent writes for ``body`` (no base profiles)."""
    snap = snapshot_from_body(body)
    return Renderer().render(snap, {snap.key: snap}).content


def profile_file(root: Path, namespace: str, name: str) -> Path:
    """Absolute path of a profile's file below kubelet root ``root``."""
    return Path(paths.profile_path(str(root), namespace, name))


class FakeApi:
    """An :class:`agent.AgentApi` with a switch: ``down = True`` makes every call fail.

    Attributes:
        items: the SeccompProfile bodies ``list_profiles`` returns.
        down: while True every call raises ``ApiError(0, "API unreachable: ...")``.
        node_status: the one SeccompNodeStatus body (None until created).
        calls: names of the calls made, in order (failed ones too).
        reports: a copy of ``status`` after each of the last 8 accepted creates or patches
            (bounded, so that soak tests measure the agent, not this double).
        report_count: how many creates or patches were accepted.
    """

    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        self.items: list[dict[str, Any]] = list(items or [])
        self.down = False
        self.node_status: dict[str, Any] | None = None
        self.calls: list[str] = []
        self.reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=8)
        self.report_count = 0
        self.node_labels: dict[str, str] = {}

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise ApiError(0, "API unreachable: [Errno 111] Connection refused")

    async def list_profiles(self) -> list[dict[str, Any]]:
        self._call("list_profiles")
        return copy.deepcopy(self.items)

    async def get_node_status(self, name: str) -> dict[str, Any] | None:
        self._call("get_node_status")
        return copy.deepcopy(self.node_status)

    async def create_node_status(self, body: Mapping[str, Any]) -> None:
        self._call("create_node_status")
        if self.node_status is not None:
            raise ApiError(409, "AlreadyExists")
        self.node_status = copy.deepcopy(dict(body))
        self.reports.append(copy.deepcopy(self.node_status.get("status") or {}))
        self.report_count += 1

    async def patch_node_status(self, name: str, patch: Mapping[str, Any]) -> None:
        self._call("patch_node_status")
        if self.node_status is None:
            raise ApiError(404, "NotFound")
        status = self.node_status.setdefault("status", {})
        for key, value in (patch.get("status") or {}).items():
            if key == "profiles" and isinstance(value, Mapping):
                profiles = status.setdefault("profiles", {})
                for k, v in value.items():
                    if v is None:
                        profiles.pop(k, None)
                    else:
                        profiles[k] = copy.deepcopy(v)
            elif value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)
        self.reports.append(copy.deepcopy(status))
        self.report_count += 1

    async def get_node_uid(self, name: str) -> str | None:
        self._call("get_node_uid")
        return "uid-" + name

    async def get_node_labels(self, name: str) -> dict[str, str] | None:
        self._call("get_node_labels")
        return dict(self.node_labels)

    async def remove_node_taint(self, name: str, key: str, effect: str) -> bool:
        self._call("remove_node_taint")
        return False

    @property
    def profiles(self) -> dict[str, Any]:
        """``status.profiles`` of the stored report (empty before the first report)."""
        return dict(((self.node_status or {}).get("status") or {}).get("profiles") or {})


def make_agent(root: Path, api: FakeApi | None, **kwargs: Any) -> Agent:
    """An agent for node ``node-1`` writing below ``root`` (``kwargs``: ``directory``)."""
    return Agent(AgentConfig(node_name="node-1", kubelet_root=str(root), resync_seconds=3600), api, **kwargs)
