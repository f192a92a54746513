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

# --- Admission webhooks (opt-in overlay manifests/webhook/) ---------------------------
#: Namespace label that opts a namespace's pods into the pod check; its value is the mode.
POD_ADMISSION_LABEL: Final = f"{GROUP}/pod-admission"
#: Mode: admit, with an admission warning per problem.
POD_ADMISSION_WARN: Final = "warn"
#: Mode: refuse the pod, naming every problem.
POD_ADMISSION_STRICT: Final = "strict"
#: URL paths (Kopf handler ids) the controller's webhook server answers at, one per check.
WEBHOOK_PATH_PROFILE: Final = "validate-profile"
WEBHOOK_PATH_POD_WARN: Final = "validate-pod-warn"
WEBHOOK_PATH_POD_STRICT: Final = "validate-pod-strict"
#: The pod subresource ``kubectl debug`` writes to add an ephemeral container.
EPHEMERAL_CONTAINERS_SUBRESOURCE: Final = "ephemeralcontainers"
#: Names in the ValidatingWebhookConfiguration (each a fully qualified name, as the API requires).
WEBHOOK_CONFIGURATION_NAME: Final = "seccomp-operator-webhook"
WEBHOOK_NAME_PROFILE: Final = f"profiles.{GROUP}"
WEBHOOK_NAME_POD_WARN: Final = f"pods-warn.{GROUP}"
WEBHOOK_NAME_POD_STRICT: Final = f"pods-strict.{GROUP}"
#: Service in front of the controller's webhook port, and the Secret cert-manager writes.
WEBHOOK_SERVICE: Final = "seccomp-operator-webhook"
WEBHOOK_TLS_SECRET: Final = "seccomp-operator-webhook-tls"
#: Where the controller container mounts that Secret (read-only), and the port it listens on.
WEBHOOK_TLS_DIR: Final = "/etc/seccomp-operator/webhook-tls"
WEBHOOK_PORT: Final = 9443
#: Seconds between two checks of the certificate files for a rotated pair.
WEBHOOK_RELOAD_SECONDS: Final = 5.0
#: Why a pod's reference fails the pod check (problem kinds in messages and tests).
POD_PROBLEM_MISSING: Final = "ProfileMissing"
POD_PROBLEM_NOT_READY: Final = "ProfileNotReady"
POD_PROBLEM_MALFORMED: Final = "NotAnOperatorPath"

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

# --- The agent's own seccomp profile ---------------------------------------------------------
#: Directory below ``<kubelet-root>/seccomp`` holding the agent's own profile: a sibling of
#: :data:`MANAGED_SUBDIR`, so the agent's garbage collection (which only lists the managed
#: directory) never sees it and the agent container, which mounts only the managed
#: directory, cannot rewrite the filter it runs under.  The init container writes it.
SELF_PROFILE_SUBDIR: Final = "seccomp-operator-self"
#: File name of the agent's profile in :data:`SELF_PROFILE_SUBDIR`.
SELF_PROFILE_FILE: Final = "agent.json"
#: The agent container's ``securityContext.seccompProfile.localhostProfile``.
SELF_PROFILE_LOCALHOST: Final = f"{SELF_PROFILE_SUBDIR}/{SELF_PROFILE_FILE}"
#: Package data (``seccomp_operator/data/``): the shipped OCI profile of the agent ...
SELF_PROFILE_DATA: Final = "agent-seccomp.json"
#: ... and how it was made (recorded syscalls, runtime list, margin, tool versions).
SELF_PROFILE_RECORDING: Final = "agent-seccomp.recording.json"

# --- Node file watch and foreign entries (SeccompNodeStatus) ---------------------------------
#: ``status.fileWatch.state``: the agent repairs files changed by hand as soon as the
#: kernel reports the change (inotify on the managed directory and each namespace directory).
FILE_WATCH_ACTIVE: Final = "Active"
#: The watch could not be set up (inotify instance or watch limit, no /proc, unsupported
#: file system...): changes are repaired at the next full resync only; the message says why.
FILE_WATCH_UNAVAILABLE: Final = "Unavailable"
#: The watch is turned off (``AgentConfig.watch``) or the agent loop has not started it.
FILE_WATCH_DISABLED: Final = "Disabled"
FILE_WATCH_STATES: Final = (FILE_WATCH_ACTIVE, FILE_WATCH_UNAVAILABLE, FILE_WATCH_DISABLED)
#: Events read from the inotify descriptor per read(2) call, at most (each takes up to
#: 16 + NAME_MAX + 1 = 272 bytes of buffer: inotify(7)).
WATCH_READ_EVENTS: Final = 64
#: Hints queued between two agent passes before they collapse into "check every file
#: once" (bounds memory when something floods the directory with changes).
WATCH_HINTS_CAP: Final = 4096
#: Events the agent takes from the queue at once before acting on them: all that is
#: queued, up to the kernel's default queue length (fs.inotify.max_queued_events, 16384:
#: inotify(7)), so a burst costs one pass, not one per read.
WATCH_DRAIN_EVENTS: Final = 16384

#: Foreign entries listed by path in ``status.foreignEntries``; ``foreignEntryCount`` counts all.
FOREIGN_ENTRIES_CAP: Final = 20
#: Kinds of foreign entries (``status.foreignEntries[*].kind``), from lstat(2) only.
FOREIGN_SYMLINK: Final = "Symlink"
#: A regular file with more than one hard link (``st_nlink > 1``).
FOREIGN_HARDLINK: Final = "HardLink"
FOREIGN_FIFO: Final = "Fifo"
FOREIGN_SOCKET: Final = "Socket"
#: A character or block device node.
FOREIGN_DEVICE: Final = "Device"
#: A directory where none belongs (a badly named one at the top, any inside a namespace).
FOREIGN_DIRECTORY: Final = "Directory"
#: A single-link regular file whose name is not ``<name>.json`` or that sits at the top level.
FOREIGN_FILE: Final = "UnknownFile"
#: A leftover ``.tmp-*`` file (an interrupted write); removed at the next full resync.
FOREIGN_TEMP: Final = "TempFile"
#: Any other file type lstat(2) can return.
FOREIGN_OTHER: Final = "Other"
FOREIGN_KINDS: Final = (
    FOREIGN_SYMLINK,
    FOREIGN_HARDLINK,
    FOREIGN_FIFO,
    FOREIGN_SOCKET,
    FOREIGN_DEVICE,
    FOREIGN_DIRECTORY,
    FOREIGN_FILE,
    FOREIGN_TEMP,
    FOREIGN_OTHER,
)
