"""The ``seccomp-operator`` command: one subcommand per role and per tool.

Roles: ``controller`` (a Deployment), ``agent`` (a DaemonSet).  Tools: ``render``
(a resource or profile file to the node JSON) and ``demo`` (the whole main job on an
in-process cluster).  Exit codes of the tools: 0 clean, 1 warnings with
``--strict``, 2 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from . import constants as c

EXIT_OK, EXIT_WARNINGS, EXIT_ERRORS = 0, 1, 2

#: Modules of this package that add subcommands: each has ``register(subparsers)``
#: which calls ``subparsers.add_parser(...)`` and ``set_defaults(func=...)``; the
#: function takes the parsed ``argparse.Namespace`` and returns the exit code.
EXTRA_COMMANDS: tuple[str, ...] = ("lint", "convert", "diff", "probe", "record", "harden")
EXTRA_COMMANDS += ("kubectl_plugin",)
EXTRA_COMMANDS += ("selfprofile",)


class _ContextFilter(logging.Filter):
    """Give every record ``node`` and ``profile`` fields, so every line carries them."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "node"):
            record.node = self.node
        if not hasattr(record, "profile"):
            record.profile = "-"
        return True


def configure_logging(role: str, node: str = "-", verbose: bool = False) -> None:
    """Structured one-line logs: time, level, role, node, profile, logger, message."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(node))
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s level=%(levelname)s role={role} node=%(node)s profile=%(profile)s "
            "logger=%(name)s msg=%(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


# --- roles ------------------------------------------------------------------------------


def _endpoint(args: argparse.Namespace) -> Any:
    from .kube import Endpoint

    return Endpoint(
        server=args.server, token=os.environ.get("SECCOMP_OPERATOR_TOKEN"), insecure=args.insecure
    )


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return port


def cmd_controller(args: argparse.Namespace) -> int:
    """Run the controller until interrupted."""
    from . import controller_handlers, roles
    from .controller import ControllerConfig

    configure_logging("controller", verbose=args.verbose)
    cfg = ControllerConfig(status_interval=args.status_interval, report_timeout=args.report_timeout)
    memo = roles.RoleMemo(endpoint=_endpoint(args), config=cfg)
    if args.metrics_port is not None:
        memo.extras["metrics_port"] = args.metrics_port
    if args.webhook_host:
        memo.extras["webhook"] = {
            "mode": "serve",
            "host": args.webhook_host,
            "port": args.webhook_port,
            "certfile": args.webhook_cert,
            "pkeyfile": args.webhook_key,
            "reload_interval": args.webhook_reload_seconds,
        }
    asyncio.run(roles.run(controller_handlers.registry, memo, liveness_endpoint=args.liveness))
    return EXIT_OK


def cmd_agent(args: argparse.Namespace) -> int:
    """Run a node agent until interrupted."""
    from . import agent_handlers, roles
    from .agent import AgentConfig

    if not args.node_name:
        print("seccomp-operator agent: --node-name or NODE_NAME is required", file=sys.stderr)
        return EXIT_ERRORS
    configure_logging("agent", node=args.node_name, verbose=args.verbose)
    cfg = AgentConfig(
        node_name=args.node_name,
        kubelet_root=args.kubelet_root,
        resync_seconds=args.resync_seconds,
        remove_taint=not args.no_remove_taint,
    )
    memo = roles.RoleMemo(endpoint=_endpoint(args), config=cfg)
    if args.metrics_port is not None:
        memo.extras["metrics_port"] = args.metrics_port
    asyncio.run(roles.run(agent_handlers.registry, memo, liveness_endpoint=args.liveness))
    return EXIT_OK


# --- tools --------------------------------------------------------------------------------


def cmd_render(args: argparse.Namespace) -> int:
    """Print the node JSON of a SeccompProfile resource or a profile JSON file."""
    from . import inputs

    try:
        loaded = inputs.load_file(args.file)
    except inputs.InputError as e:
        _print_findings(e.findings, args.output)
        return EXIT_ERRORS
    try:
        result = inputs.render_one(loaded, name=args.name)
    except inputs.InputError as e:
        _print_findings(e.findings, args.output)
        return EXIT_ERRORS
    if result.findings:
        _print_findings(result.findings, args.output)
    sys.stdout.buffer.write(result.content)
    sys.stdout.flush()
    return EXIT_WARNINGS if (args.strict and result.findings) else EXIT_OK


def _print_findings(findings: Sequence[Any], output: str) -> None:
    if output == "json":
        print(json.dumps([f.as_dict() for f in findings], indent=2), file=sys.stderr)
    else:
        for f in findings:
            print(str(f), file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the main job on an in-process cluster and print the rollout."""
    from . import demo

    configure_logging("demo", verbose=args.verbose)
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    return asyncio.run(demo.main(workdir=args.workdir, nodes=args.nodes, run_container=not args.no_container))


# --- parser --------------------------------------------------------------------------------


def build_parser(*, tools: bool = True) -> argparse.ArgumentParser:
    """The argument parser with every subcommand (without the :data:`EXTRA_COMMANDS` when not ``tools``)."""
    parser = argparse.ArgumentParser(prog="seccomp-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def role(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument(
            "--server",
            default=os.environ.get("SECCOMP_OPERATOR_SERVER"),
            help="API server URL (default: in-cluster service account, else kubeconfig)",
        )
        p.add_argument("--insecure", action="store_true", help="skip TLS verification (local emulator only)")
        p.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
        env_port = os.environ.get("METRICS_PORT")
        p.add_argument(
            "--metrics-port",
            type=_port,
            default=int(env_port) if env_port else None,
            help="serve /metrics, /healthz and /readyz on this port (env METRICS_PORT; default off)",
        )
        p.add_argument("-v", "--verbose", action="store_true")
        return p

    p = role("controller", "aggregate node reports into profile status; hold the finalizer")
    p.add_argument(
        "--status-interval",
        type=float,
        default=1.0,
        help="minimum seconds between two status writes of one profile (default 1)",
    )
    p.add_argument(
        "--report-timeout",
        type=float,
        default=c.DEFAULT_REPORT_TIMEOUT,
        help="seconds a ready agent may take to report the current content before its node "
        f"is shown as Unknown (default {c.DEFAULT_REPORT_TIMEOUT:g})",
    )
    p.add_argument(
        "--webhook-host",
        default=None,
        help="serve the validating admission webhook for this Service DNS name (default: off)",
    )
    p.add_argument(
        "--webhook-port", type=_port, default=c.WEBHOOK_PORT, help=f"webhook port (default {c.WEBHOOK_PORT})"
    )
    p.add_argument(
        "--webhook-cert",
        default=None,
        help="TLS certificate file; a rotated pair is loaded without restart (the webhook "
        "configuration is the static one of manifests/webhook/, never managed by the controller)",
    )
    p.add_argument("--webhook-key", default=None, help="TLS private key file")
    p.add_argument(
        "--webhook-reload-seconds",
        type=float,
        default=c.WEBHOOK_RELOAD_SECONDS,
        help="seconds between checks of the certificate files for a new pair "
        f"(default {c.WEBHOOK_RELOAD_SECONDS:g})",
    )
    p.set_defaults(func=cmd_controller)

    p = role("agent", "write profiles into this node's kubelet seccomp directory")
    p.add_argument(
        "--node-name", default=os.environ.get("NODE_NAME"), help="this node's name (env NODE_NAME)"
    )
    p.add_argument(
        "--kubelet-root",
        default=os.environ.get("KUBELET_ROOT", c.DEFAULT_KUBELET_ROOT),
        help=f"the kubelet's --root-dir (default {c.DEFAULT_KUBELET_ROOT})",
    )
    p.add_argument(
        "--resync-seconds",
        type=float,
        default=60.0,
        help="period of the full resync: API list and check of every file (default 60)",
    )
    p.add_argument(
        "--no-remove-taint",
        action="store_true",
        help=f"leave the {c.NOT_READY_TAINT_KEY} taint on the node (default: removed after the initial sync)",
    )
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser("render", help="print the node JSON of a SeccompProfile resource or profile JSON")
    p.add_argument(
        "file", help="a SeccompProfile YAML (several documents: the others serve as bases) or JSON"
    )
    p.add_argument("--name", help="which SeccompProfile of the file to render")
    p.add_argument("--output", choices=("text", "json"), default="text", help="format of findings on stderr")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("demo", help="run controller and agents on an in-process API emulator")
    p.add_argument("--workdir", default=None, help="where the nodes' kubelet roots go (default: a temp dir)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--no-container", action="store_true", help="skip the containerd part")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_demo)

    for module in EXTRA_COMMANDS if tools else ():
        importlib.import_module(f"{__package__}.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seccomp-operator`` console script.

    For ``agent``, before anything imports Kopf: the ``kubernetes`` client library is made
    unimportable (Kopf would load it, about 20 MiB, for a login the roles do not use) and
    the offline tools' modules are not imported (``docs/scale.md``, "Agent memory").
    """
    words = list(sys.argv[1:] if argv is None else argv)
    lean = bool(words) and words[0] == "agent"
    if lean:
        from . import kube

        kube.block_client_libraries()
    args = build_parser(tools=not lean).parse_args(words)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
