"""Every name the operator shares with the cluster, in one place.

API group and resources, labels, annotations, finalizer, file-system layout,
condition types, states, phases and event reasons.  Nothing here imports kopf
or the network, so both roles, the offline tools and the tests can use it.
"""

from __future__ import annotations

from typing import Final

# --- API -------------------------------------------------------------------
GROUP: Final = "seccomp-operator.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

PROFILE_KIND: Final = "SeccompProfile"
PROFILE_PLURAL: Final = "seccompprofiles"
PROFILE_SINGULAR: Final = "seccompprofile"
#: ``sp`` belongs to the security-profiles-operator; ours must not collide.
PROFILE_SHORT_NAMES: Final = ("scp", "seccompprof")

NODE_STATUS_KIND: Final = "SeccompNodeStatus"
NODE_STATUS_PLURAL: Final = "seccompnodestatuses"
NODE_STATUS_SINGULAR: Final = "seccompnodestatus"
NODE_STATUS_SHORT_NAMES: Final = ("scns",)

#: The one finalizer the controller puts on a profile (never one per node).
FINALIZER: Final = f"{GROUP}/finalizer"

# --- Labels and annotations -----------------------------------------------------
#: Label on agent pods; the controller reads their readiness per node.
AGENT_POD_LABEL: Final = "app.kubernetes.io/component"
AGENT_POD_LABEL_VALUE: Final = "agent"
APP_LABEL: Final = "app.kubernetes.io/name"
APP_LABEL_VALUE: Final = "seccomp-operator"
#: Node label that overrides the kubelet root directory for one node.
KUBELET_ROOT_LABEL: Final = f"{GROUP}/kubelet-root"
#: Prefix of kopf's own bookkeeping annotations written by the controller.
KOPF_PREFIX: Final = f"controller.{GROUP}"

# --- File system -------------------------------------------------------------
DEFAULT_KUBELET_ROOT: Final = "/var/lib/kubelet"
#: The kubelet resolves ``localhostProfile`` relative to ``<kubelet-root>/seccomp``
#: (kubelet ``--root-dir``; Kubernetes docs, "Restrict a Container's Syscalls with seccomp").
SECCOMP_SUBDIR: Final = "seccomp"
#: Our managed directory below ``<kubelet-root>/seccomp``; nothing outside it is touched.
MANAGED_SUBDIR: Final = "seccomp-operator"
PROFILE_SUFFIX: Final = ".json"
FILE_MODE: Final = 0o644
DIR_MODE: Final = 0o755
TEMP_PREFIX: Final = ".tmp-"

# --- Profile states ---------------------------------------------------------------
STATE_ENABLED: Final = "Enabled"
STATE_DISABLED: Final = "Disabled"

# --- Per-node states (reported by agents, aggregated by the controller) -------------
NODE_INSTALLED: Final = "Installed"
NODE_ERROR: Final = "Error"
NODE_REMOVED: Final = "Removed"
#: Computed by the controller only:
NODE_PENDING: Final = "Pending"
NODE_OUTDATED: Final = "Outdated"
NODE_UNKNOWN: Final = "Unknown"

# --- Profile phases (``status.phase``, printer column STATUS) -------------------
PHASE_PENDING: Final = "Pending"
PHASE_PROGRESSING: Final = "Progressing"
PHASE_INSTALLED: Final = "Installed"
PHASE_DEGRADED: Final = "Degraded"
PHASE_INVALID: Final = "Invalid"
PHASE_DISABLED: Final = "Disabled"
PHASE_TERMINATING: Final = "Terminating"

# --- Condition types (Kubernetes API conventions) -------------------------------------
COND_READY: Final = "Ready"
COND_PROGRESSING: Final = "Progressing"
COND_DEGRADED: Final = "Degraded"
COND_INVALID: Final = "Invalid"

# --- Condition reasons ---------------------------------------------------------------
REASON_ALL_INSTALLED: Final = "AllNodesInstalled"
REASON_NODES_NOT_INSTALLED: Final = "NodesNotInstalled"
REASON_ROLLING_OUT: Final = "RollingOut"
REASON_ROLLOUT_COMPLETE: Final = "RolloutComplete"
REASON_NODE_ERRORS: Final = "NodeErrors"
REASON_NO_ERRORS: Final = "NoErrors"
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_VALID_SPEC: Final = "ValidSpec"
REASON_BASE_MISSING: Final = "BaseProfileMissing"
REASON_DISABLED: Final = "Disabled"
REASON_NO_NODES: Final = "NoNodes"
REASON_TERMINATING: Final = "Terminating"

# --- Event reasons ---------------------------------------------------------------
EVENT_INVALID: Final = "InvalidProfile"
EVENT_NODE_ERROR: Final = "NodeInstallFailed"
EVENT_READY: Final = "ProfileReady"
EVENT_REMOVING: Final = "RemovingFromNodes"

# --- Limits --------------------------------------------------------------------------
#: Longest chain of ``baseProfileName`` links followed before giving up.
MAX_BASE_DEPTH: Final = 8
#: Nodes listed by name in ``status.notReadyNodes``; the rest are only counted.
NOT_READY_NODES_CAP: Final = 20
#: Longest message kept per node entry in status (characters).
MESSAGE_CAP: Final = 300

# --- Rollout at scale (issue 4) ----------------------------------------------------------
#: Taint new nodes carry until their agent installed every enabled profile
#: (kubelet ``--register-with-taints=seccomp-operator.dev/not-ready=:NoSchedule``).
NOT_READY_TAINT_KEY: Final = f"{GROUP}/not-ready"
NOT_READY_TAINT_EFFECT: Final = "NoSchedule"
#: Pods listed by name in ``status.referencingPods`` while a deletion waits for them.
REFERENCING_PODS_CAP: Final = 20
#: Seconds a ready agent may take to report the current content before its node is Unknown.
DEFAULT_REPORT_TIMEOUT: Final = 120.0
EVENT_DELETION_BLOCKED: Final = "DeletionWaitsForPods"
REASON_REPORT_TIMEOUT: Final = "ReportTimeout"
