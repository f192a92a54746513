"""seccomp-operator: SeccompProfile resources become seccomp files on every node.

The package is split into a pure core (parsing, validation, rendering, status
aggregation, paths) that imports neither kopf nor the network, and two thin
roles (``controller`` and ``agent``) that register Kopf handlers and hand the
work to that core.
"""

__version__ = "0.1.0"
