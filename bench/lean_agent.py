"""The node agent through the lean entry point (a child process of ``bench/rollout.py``).

Run as ``python bench/lean_agent.py SERVER NODE KUBELET_ROOT``.  It does what
``seccomp-operator agent --server SERVER --node-name NODE --kubelet-root KUBELET_ROOT
--resync-seconds 3600 --no-remove-taint`` does, minus what the agent does not need
(docs/scale.md, "Agent memory"): the ``kubernetes``, ``kubernetes_asyncio`` and
``pykube`` client libraries are made unimportable before Kopf is imported
(:func:`seccomp_operator.kube.block_client_libraries`; Kopf imports whichever is
installed, for login handlers the agent does not use), and the offline tools' modules
(``lint``, ``convert``, ``record``, ``kubectl_plugin``...) that ``seccomp-operator``'s
argument parser imports are not imported.  It prints
``{"floor_rss_mib": ...}`` (RSS after the imports, in MiB) and then runs the agent
until it is terminated.
"""

from __future__ import annotations

import sys

from seccomp_operator.kube import Endpoint, block_client_libraries

block_client_libraries()  # before Kopf is imported (kube.py itself imports neither)

import asyncio  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from seccomp_operator import agent_handlers, roles  # noqa: E402
from seccomp_operator.agent import AgentConfig  # noqa: E402


def rss_mib() -> float:
    """``VmRSS`` of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(server: str, node: str, root: str) -> None:
    """Print the import floor, then run the agent role (Kopf) until terminated."""
    print(json.dumps({"floor_rss_mib": rss_mib()}), flush=True)
    cfg = AgentConfig(node_name=node, kubelet_root=root, resync_seconds=3600, remove_taint=False)
    memo = roles.RoleMemo(endpoint=Endpoint(server=server), config=cfg)
    asyncio.run(roles.run(agent_handlers.registry, memo))


if __name__ == "__main__":
    main(*sys.argv[1:4])
