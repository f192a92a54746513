"""``kubectl seccomp``: read-only views of the rollout, from the per-node reports.

Installed as the console script ``kubectl-seccomp``, so kubectl finds it as a plugin::

    kubectl seccomp status NAME [-n NAMESPACE]   # one row per node
    kubectl seccomp nodes                        # per node: installed / failing / pending,
                                                 # foreign entries, file watch

It uses the user's kubeconfig (or the in-cluster service account), and only reads:
the SeccompProfile(s), the SeccompNodeStatus objects, Nodes and the agent pods.  The
per-node state is computed by the same function as the controller's status
(:func:`rollout.node_state`), so the table and ``status.notReadyNodes`` agree.

Exit codes: 0 shown, 1 the profile does not exist, 2 an API error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from . import constants as c
from . import rollout
from .kube import Endpoint, make_api_client

EXIT_OK, EXIT_NOT_FOUND, EXIT_API = 0, 1, 2


class Reader:
    """The reads the plugin makes (raw dicts), over the ``kubernetes`` client."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.client = make_api_client(endpoint)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)

    def profile(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One SeccompProfile, or None if it does not exist."""
        try:
            obj: Any = self.custom.get_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.PROFILE_PLURAL, name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return dict(obj)

    def profiles(self) -> list[dict[str, Any]]:
        """All SeccompProfiles."""
        result: Any = self.custom.list_cluster_custom_object(c.GROUP, c.VERSION, c.PROFILE_PLURAL)
        return list(result["items"])

    def reports(self) -> dict[str, dict[str, Any]]:
        """Node name -> the ``status`` of its SeccompNodeStatus."""
        result: Any = self.custom.list_cluster_custom_object(c.GROUP, c.VERSION, c.NODE_STATUS_PLURAL)
        items = result["items"]
        return {i["metadata"]["name"]: dict(i.get("status") or {}) for i in items}

    def nodes(self) -> list[str]:
        """Names of the existing Nodes."""
        raw: Any = self.core.list_node(_preload_content=False)  # a raw response, not a V1NodeList
        data = json.loads(raw.data)
        return sorted(i["metadata"]["name"] for i in data.get("items") or [])

    def agents(self) -> dict[str, rollout.AgentInfo]:
        """Node name -> the readiness of its agent pod (the best of several)."""
        selector = f"{c.AGENT_POD_LABEL}={c.AGENT_POD_LABEL_VALUE}"
        resp: Any = self.core.list_pod_for_all_namespaces(label_selector=selector, _preload_content=False)
        per_node: dict[str, list[rollout.AgentInfo]] = {}
        for pod in json.loads(resp.data).get("items") or []:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if labels.get(c.AGENT_POD_LABEL) != c.AGENT_POD_LABEL_VALUE:
                continue
            read = rollout.agent_from_pod(pod)
            if read is not None:
                per_node.setdefault(read[0], []).append(read[1])
        return {n: a for n, infos in per_node.items() if (a := rollout.best_agent(infos)) is not None}

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()  # type: ignore[no-untyped-call]


def _views(reader: Reader) -> list[rollout.NodeView]:
    reports, agents = reader.reports(), reader.agents()
    return [rollout.NodeView(n, agents.get(n), reports.get(n)) for n in reader.nodes()]


def status_rows(profile: Mapping[str, Any], views: Sequence[rollout.NodeView]) -> list[list[str]]:
    """Rows ``[node, state, hash matches, message, since]`` for one profile (pure).

    ``hash matches`` is ``yes``/``no`` when the node reports a hash, ``-`` otherwise.
    """
    meta = profile.get("metadata") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    status = profile.get("status") or {}
    expected = status.get("contentHash")
    spec = profile.get("spec") or {}
    wanted = spec.get("state", c.STATE_ENABLED) != c.STATE_DISABLED and not meta.get("deletionTimestamp")
    rows = []
    for view in sorted(views, key=lambda v: v.name):
        st = rollout.node_state(key, expected, view, wanted=wanted)
        entry = ((view.report or {}).get("profiles") or {}).get(key) or {}
        on_disk = entry.get("contentHash")
        matches = "-" if not on_disk else ("yes" if on_disk == expected else "no")
        message = st.message or st.reason
        rows.append([view.name, st.state, matches, message, st.since or "-"])
    return rows


def nodes_rows(profiles: Sequence[Mapping[str, Any]], views: Sequence[rollout.NodeView]) -> list[list[str]]:
    """Rows ``[node, agent, installed, failing, pending, kubelet root, foreign, watch]`` (pure).

    Counted over enabled profiles that are not being deleted and that render
    (``status.contentHash`` set): installed = the node has the current hash, failing =
    the node reports an error, pending = anything else (including Unknown).  ``foreign``
    is the node's ``status.foreignEntryCount`` (entries planted in its managed directory)
    and ``watch`` its ``status.fileWatch.state``; ``-`` when the report has none.
    """
    wanted = [
        p
        for p in profiles
        if (p.get("spec") or {}).get("state", c.STATE_ENABLED) != c.STATE_DISABLED
        and not (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("status") or {}).get("contentHash")
    ]
    rows = []
    for view in sorted(views, key=lambda v: v.name):
        counts = {"installed": 0, "failing": 0, "pending": 0}
        for p in wanted:
            meta = p.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            st = rollout.node_state(key, (p.get("status") or {}).get("contentHash"), view)
            if st.state == c.NODE_INSTALLED:
                counts["installed"] += 1
            elif st.state == c.NODE_ERROR:
                counts["failing"] += 1
            else:
                counts["pending"] += 1
        agent = (
            "none"
            if view.agent is None
            else ("ready" if view.agent.ready else view.agent.reason or "NotReady")
        )
        report = view.report or {}
        root = str(report.get("kubeletRoot") or "-")
        foreign = report.get("foreignEntryCount")
        watch = (report.get("fileWatch") or {}).get("state") or "-"
        rows.append(
            [
                view.name,
                agent,
                *(str(v) for v in counts.values()),
                root,
                "-" if foreign is None else str(foreign),
                str(watch),
            ]
        )
    return rows


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns as kubectl prints them (two spaces between columns)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def build_parser(prog: str = "kubectl-seccomp") -> argparse.ArgumentParser:
    """The plugin's parser (``status``, ``nodes``)."""
    parser = argparse.ArgumentParser(prog=prog, description="Read-only views of seccomp-operator rollouts.")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the plugin's options and subcommands to ``parser``."""
    parser.add_argument("--server", default=None, help="API server URL (default: kubeconfig / in-cluster)")
    parser.add_argument("--insecure", action="store_true", help="skip TLS verification")
    sub = parser.add_subparsers(dest="view", required=True)
    p = sub.add_parser("status", help="per-node table of one profile")
    p.add_argument("name")
    p.add_argument("-n", "--namespace", default="default")
    sub.add_parser("nodes", help="per node: profiles installed, failing, pending")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Execute a parsed command, printing to ``out``; returns the exit code."""
    try:
        reader = Reader(Endpoint(server=args.server, insecure=args.insecure))
    except kubernetes.config.ConfigException as e:
        print(f"no cluster to talk to: {e} (set KUBECONFIG or pass --server)", file=sys.stderr)
        return EXIT_API
    try:
        if args.view == "status":
            profile = reader.profile(args.namespace, args.name)
            if profile is None:
                print(f"seccompprofile {args.namespace}/{args.name} not found", file=sys.stderr)
                return EXIT_NOT_FOUND
            st = profile.get("status") or {}
            out.write(
                f"{args.namespace}/{args.name}: {st.get('phase', 'Unknown')} {st.get('ready', '-')} "
                f"content {str(st.get('contentHash') or '-')[:12]}\n"
            )
            out.write(
                table(
                    ["NODE", "STATE", "HASH-MATCHES", "MESSAGE", "SINCE"],
                    status_rows(profile, _views(reader)),
                )
            )
        else:
            rows = nodes_rows(reader.profiles(), _views(reader))
            header = ["NODE", "AGENT", "INSTALLED", "FAILING", "PENDING", "KUBELET-ROOT", "FOREIGN", "WATCH"]
            out.write(table(header, rows))
    except ApiException as e:
        print(f"API error: {e.status} {e.reason}", file=sys.stderr)
        return EXIT_API
    except (OSError, TransportError) as e:
        print(f"API unreachable: {e}", file=sys.stderr)
        return EXIT_API
    finally:
        reader.close()
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``kubectl-seccomp`` console script."""
    args = build_parser().parse_args(argv)
    return run(args, out or sys.stdout)


def register(sub: Any) -> None:
    """``seccomp-operator kubectl ...``: the same views from the main command (cli.EXTRA_COMMANDS)."""
    p = sub.add_parser("kubectl", help="read-only rollout views (also installed as kubectl-seccomp)")
    add_arguments(p)
    p.set_defaults(func=lambda args: run(args, sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
