"""The policy guard: cluster-scoped ``SeccompPolicy`` objects that refuse risky profiles.

Pod Security "restricted" accepts any ``Localhost`` seccomp profile, even one that
allows everything, so a namespace admin who may create SeccompProfiles could hand
their pods an unconfined profile.  A ``SeccompPolicy`` (cluster-scoped, written by the
cluster admin) closes that gap for the namespaces it selects.  It may:

- refuse profiles whose ``defaultAction`` lets every syscall through
  (``denyAllowAllDefault``: ``SCMP_ACT_ALLOW``, ``SCMP_ACT_LOG``);
- refuse profiles that let a listed high-risk syscall through (``deniedSyscalls``):
  by a rule whose action allows it (``SCMP_ACT_ALLOW``, ``SCMP_ACT_LOG``, or
  ``SCMP_ACT_NOTIFY``, since the user-space listener may let it through), even with
  argument conditions, or by an allowing default that no unconditional rule overrides;
- refuse actions outside a set (``allowedActions``), in ``defaultAction`` and in rules.

Base profiles count: with ``lookup_base``, the rules of every profile in the
``baseProfileName`` chain are checked as if written in the profile (the node file
holds their union).  The same function serves admission (refuse on create/update)
and the controller's re-check (:func:`violations`: existing profiles that stop
complying, because a policy was added or a namespace relabelled, are marked with a
finding and a condition, never deleted).

Pure: no kopf, no network, no libseccomp.  Bad shapes in a profile never raise here
(the spec parser reports those); a malformed policy raises :class:`PolicyError` in
:func:`parse_policy` so that callers can fail closed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from . import constants as c
from .findings import Finding, Severity

# --- API names ------------------------------------------------------------------------------
POLICY_KIND: Final = "SeccompPolicy"
POLICY_PLURAL: Final = "seccomppolicies"
POLICY_SINGULAR: Final = "seccomppolicy"
POLICY_SHORT_NAMES: Final = ("scpol",)

#: Condition type the controller sets on a profile's status (True: violates a policy).
COND_POLICY_VIOLATION: Final = "PolicyViolation"
REASON_POLICY_VIOLATION: Final = "PolicyViolation"
REASON_COMPLIANT: Final = "Compliant"
#: Namespace label every real API server sets (``NamespaceDefaultLabelName``).
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"

#: Actions that let a syscall run (``NOTIFY``: the listener decides, and may let it run).
ALLOWING_ACTIONS: Final = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"})
#: Default actions that let every syscall no rule names run.
ALLOW_ALL_DEFAULTS: Final = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"})

#: A starting list for ``deniedSyscalls``: calls that widen the kernel attack surface or
#: escape a container's isolation (Docker's default profile refuses each of them).
HIGH_RISK_SYSCALLS: Final[tuple[str, ...]] = (
    "add_key",
    "bpf",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "init_module",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "mount",
    "move_mount",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "request_key",
    "setns",
    "swapoff",
    "swapon",
    "umount2",
    "unshare",
    "userfaultfd",
)

#: Most entries read from any list of a policy (the CRD caps them too).
MAX_POLICY_ITEMS: Final = 1024


class Enforcement(enum.StrEnum):
    """What a policy does with a violation: ``Deny`` refuses (error), ``Warn`` warns."""

    DENY = "Deny"
    WARN = "Warn"


class PolicyError(ValueError):
    """A SeccompPolicy body that cannot be used; the message names the policy and the field."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry of a label selector.

    Attributes:
        key: label key.
        operator: ``In``, ``NotIn``, ``Exists`` or ``DoesNotExist``.
        values: for ``In``/``NotIn``.
    """

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if ``labels`` satisfy this requirement (Kubernetes semantics)."""
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True, slots=True)
class Selector:
    """A Kubernetes label selector (``matchLabels`` and ``matchExpressions``, ANDed).

    An empty selector matches every namespace, as in Kubernetes.
    """

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if every label and every expression matches ``labels``."""
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.expressions
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed ``SeccompPolicy``.

    Attributes:
        name: ``metadata.name``, named in every finding.
        namespaces: namespaces selected by name.
        selector: namespaces selected by labels; None when not given.
        deny_allow_all_default: refuse ``defaultAction`` ``SCMP_ACT_ALLOW``/``SCMP_ACT_LOG``.
        denied_syscalls: syscall names a profile must not let through.
        allowed_actions: the only actions a profile may use; None means any.
        enforcement: ``Deny`` (findings are errors) or ``Warn`` (warnings).
    """

    name: str
    namespaces: frozenset[str] = frozenset()
    selector: Selector | None = None
    deny_allow_all_default: bool = False
    denied_syscalls: frozenset[str] = frozenset()
    allowed_actions: frozenset[str] | None = None
    enforcement: Enforcement = Enforcement.DENY

    def applies_to(self, namespace: str, labels: Mapping[str, str] | None = None) -> bool:
        """Whether this policy covers ``namespace`` (with its ``labels``).

        A namespace is covered if it is in ``namespaces`` or matches ``selector``; a
        policy with neither covers every namespace.  ``kubernetes.io/metadata.name`` is
        added to ``labels`` when missing, as the API server does.
        """
        if not self.namespaces and self.selector is None:
            return True
        if namespace in self.namespaces:
            return True
        if self.selector is None:
            return False
        full = {NAMESPACE_NAME_LABEL: namespace, **(labels or {})}
        return self.selector.matches(full)

    @property
    def severity(self) -> Severity:
        """``error`` for ``Deny``, ``warning`` for ``Warn``."""
        return Severity.ERROR if self.enforcement is Enforcement.DENY else Severity.WARNING


# --- parsing policies ---------------------------------------------------------------------------


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    if len(value) > MAX_POLICY_ITEMS:
        raise PolicyError(f"{where} has {len(value)} entries; at most {MAX_POLICY_ITEMS}")
    return list(value)


def _selector(value: object, where: str) -> Selector | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be a label selector object")
    labels = value.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise PolicyError(f"{where}.matchLabels must map strings to strings")
    exprs = value.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise PolicyError(f"{where}.matchExpressions must be a list")
    reqs: list[Requirement] = []
    for i, e in enumerate(exprs):
        at = f"{where}.matchExpressions[{i}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("key"), str):
            raise PolicyError(f"{at} needs a string key")
        op = e.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(f"{at}.operator must be In, NotIn, Exists or DoesNotExist, not {op!r}")
        values = _strings(e.get("values"), f"{at}.values")
        if op in ("In", "NotIn") and not values:
            raise PolicyError(f"{at}.values must not be empty for {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise PolicyError(f"{at}.values must be empty for {op}")
        reqs.append(Requirement(e["key"], op, frozenset(values)))
    return Selector(tuple(sorted(labels.items())), tuple(reqs))


def parse_policy(body: Mapping[str, Any]) -> Policy:
    """Build a :class:`Policy` from a ``SeccompPolicy`` body (dict or kopf Body).

    Raises:
        PolicyError: a field has the wrong shape (the CRD schema normally prevents it);
            the message names the policy and the field.
    """
    meta = body.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        raise PolicyError("SeccompPolicy without metadata.name")
    spec = body.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise PolicyError(f"SeccompPolicy {name!r}: spec must be an object")
    where = f"SeccompPolicy {name!r}: spec"
    deny_all = spec.get("denyAllowAllDefault", False)
    if not isinstance(deny_all, bool):
        raise PolicyError(f"{where}.denyAllowAllDefault must be true or false")
    allowed = spec.get("allowedActions")
    enforcement = spec.get("enforcement", Enforcement.DENY.value)
    if enforcement not in {e.value for e in Enforcement}:
        raise PolicyError(f"{where}.enforcement must be Deny or Warn, not {enforcement!r}")
    return Policy(
        name=name,
        namespaces=frozenset(_strings(spec.get("namespaces"), f"{where}.namespaces")),
        selector=_selector(spec.get("namespaceSelector"), f"{where}.namespaceSelector"),
        deny_allow_all_default=deny_all,
        denied_syscalls=frozenset(_strings(spec.get("deniedSyscalls"), f"{where}.deniedSyscalls")),
        allowed_actions=None if allowed is None else frozenset(_strings(allowed, f"{where}.allowedActions")),
        enforcement=Enforcement(enforcement),
    )


def parse_policies(bodies: Iterable[Mapping[str, Any]]) -> tuple[list[Policy], list[str]]:
    """Parse many policy bodies.  Returns ``(policies, problems)``; bad ones are left out.

    A caller that must fail closed refuses while ``problems`` is not empty.
    """
    policies: list[Policy] = []
    problems: list[str] = []
    for body in bodies:
        try:
            policies.append(parse_policy(body))
        except PolicyError as e:
            problems.append(str(e))
    return policies, problems


# --- reading a profile (tolerant: the parser reports bad shapes) ----------------------------------

LookupBase = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class _Rule:
    path: str
    action: str
    names: tuple[str, ...]
    conditional: bool


@dataclass
class _Effective:
    default_action: str | None = None
    default_path: str = "spec.defaultAction"
    rules: list[_Rule] = field(default_factory=list)


def _rules_of(spec: Mapping[str, Any], prefix: str) -> list[_Rule]:
    out: list[_Rule] = []
    rules = spec.get("syscalls")
    if not isinstance(rules, list):
        return out
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        action = rule.get("action")
        names = rule.get("names")
        if not isinstance(names, list):
            single = rule.get("name")
            names = [single] if isinstance(single, str) else []
        args = rule.get("args")
        out.append(
            _Rule(
                path=f"{prefix}.syscalls[{i}]",
                action=action if isinstance(action, str) else "",
                names=tuple(n for n in names if isinstance(n, str)),
                conditional=isinstance(args, list) and bool(args),
            )
        )
    return out


def _effective(spec: Mapping[str, Any], lookup_base: LookupBase | None, prefix: str) -> _Effective:
    """The profile's default action and its rules plus those of its base chain."""
    eff = _Effective(default_path=f"{prefix}.defaultAction")
    default = spec.get("defaultAction")
    eff.default_action = default if isinstance(default, str) else None
    chain: list[tuple[str, Mapping[str, Any]]] = []
    seen: set[str] = set()
    current: Mapping[str, Any] = spec
    while lookup_base is not None and len(chain) < c.MAX_BASE_DEPTH:
        base = current.get("baseProfileName")
        if not isinstance(base, str) or not base or base in seen:
            break
        seen.add(base)
        found = lookup_base(base)
        if not isinstance(found, Mapping):
            break
        chain.append((base, found))
        current = found
    for base, base_spec in reversed(chain):  # base rules first, as rendered
        eff.rules.extend(_rules_of(base_spec, f"{prefix}.baseProfileName({base})"))
    eff.rules.extend(_rules_of(spec, prefix))
    if eff.default_action is None:  # own fields win; a base may supply the default
        for base, base_spec in chain:
            d = base_spec.get("defaultAction")
            if isinstance(d, str):
                eff.default_action = d
                eff.default_path = f"{prefix}.baseProfileName({base}).defaultAction"
                break
    return eff


# --- the check ----------------------------------------------------------------------------------


def _msg(policy: Policy, namespace: str, text: str) -> str:
    return f'SeccompPolicy "{policy.name}" refuses profiles in namespace "{namespace}" that {text}'


def _check_one(policy: Policy, eff: _Effective, namespace: str) -> list[Finding]:
    sev = policy.severity
    found: list[Finding] = []
    default = eff.default_action or ""
    if policy.deny_allow_all_default and default in ALLOW_ALL_DEFAULTS:
        found.append(
            Finding(
                sev,
                eff.default_path,
                _msg(policy, namespace, f"allow every syscall by default ({default})"),
                "use SCMP_ACT_ERRNO as defaultAction and allow only the syscalls the workload needs",
            )
        )
    if policy.allowed_actions is not None:
        allowed = sorted(policy.allowed_actions)
        if default and default not in policy.allowed_actions:
            found.append(
                Finding(
                    sev,
                    eff.default_path,
                    _msg(policy, namespace, f"use the action {default}"),
                    "allowed actions: " + ", ".join(allowed),
                )
            )
        for rule in eff.rules:
            if rule.action and rule.action not in policy.allowed_actions:
                found.append(
                    Finding(
                        sev,
                        f"{rule.path}.action",
                        _msg(policy, namespace, f"use the action {rule.action}"),
                        "allowed actions: " + ", ".join(allowed),
                    )
                )
    if policy.denied_syscalls:
        found.extend(_denied_syscalls(policy, eff, namespace))
    return found


def _denied_syscalls(policy: Policy, eff: _Effective, namespace: str) -> list[Finding]:
    sev = policy.severity
    found: list[Finding] = []
    reported: set[str] = set()
    for rule in eff.rules:
        if rule.action not in ALLOWING_ACTIONS:
            continue
        for name in rule.names:
            if name in policy.denied_syscalls and name not in reported:
                reported.add(name)
                how = "conditionally, " if rule.conditional else ""
                extra = " (the listener decides)" if rule.action == "SCMP_ACT_NOTIFY" else ""
                found.append(
                    Finding(
                        sev,
                        rule.path,
                        _msg(policy, namespace, f"allow the syscall {name}")
                        + f": this rule lets it through ({how}{rule.action}{extra})",
                        f"remove {name} from this rule; the policy denies: "
                        + ", ".join(sorted(policy.denied_syscalls)),
                    )
                )
    default = eff.default_action or ""
    if default in ALLOWING_ACTIONS:
        blocked = {
            n
            for r in eff.rules
            if r.action and r.action not in ALLOWING_ACTIONS and not r.conditional
            for n in r.names
        }
        let_through = sorted(policy.denied_syscalls - blocked - reported)
        for name in let_through:
            found.append(
                Finding(
                    sev,
                    eff.default_path,
                    _msg(policy, namespace, f"allow the syscall {name}")
                    + f": defaultAction {default} lets it through and no unconditional rule refuses it",
                    f'add {{"names": ["{name}"], "action": "SCMP_ACT_ERRNO"}} to syscalls, '
                    "or use a refusing defaultAction",
                )
            )
    return found


def check(
    profile_spec: object,
    namespace: str,
    policies: Iterable[Policy],
    *,
    namespace_labels: Mapping[str, str] | None = None,
    lookup_base: LookupBase | None = None,
    prefix: str = "spec",
) -> list[Finding]:
    """Check one SeccompProfile spec against every policy that covers its namespace.

    Args:
        profile_spec: the profile's ``spec`` mapping as submitted (anything else: no
            findings here; the spec parser reports it).
        namespace: the profile's namespace.
        policies: parsed policies (:func:`parse_policy`).
        namespace_labels: the namespace's labels, for ``namespaceSelector``.
        lookup_base: returns the ``spec`` of a profile of the same namespace by name, or
            None; with it, the rules of the ``baseProfileName`` chain are checked too.
        prefix: path prefix of the findings.

    Returns:
        Findings (errors for ``Deny`` policies, warnings for ``Warn``), each naming the
        policy, the namespace and, for ``deniedSyscalls``, the syscall; ordered by
        policy name, then as found.  Empty when the profile complies.  Never raises.
    """
    if not isinstance(profile_spec, Mapping):
        return []
    applicable = sorted(
        (p for p in policies if p.applies_to(namespace, namespace_labels)), key=lambda p: p.name
    )
    if not applicable:
        return []
    eff = _effective(profile_spec, lookup_base, prefix)
    found: list[Finding] = []
    for policy in applicable:
        found.extend(_check_one(policy, eff, namespace))
    return found


def admission_message(findings: Sequence[Finding], limit: int = 5) -> str:
    """One message for an admission refusal: the first ``limit`` findings with their paths."""
    shown = "; ".join(f"{f.path}: {f.message}" for f in findings[:limit])
    more = len(findings) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def violations(
    profiles: Iterable[tuple[str, str, Mapping[str, Any]]],
    policies: Iterable[Policy],
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[Finding]]:
    """Re-check existing profiles (the controller's side): which ones violate a policy now.

    Args:
        profiles: ``(namespace, name, spec)`` of every profile; bases are looked up
            among them (same namespace).
        policies: parsed policies.
        namespace_labels: labels per namespace name.

    Returns:
        ``{"<namespace>/<name>": findings}`` for each profile with at least one finding.
        Nothing is deleted or changed: the controller marks these profiles with a
        :data:`COND_POLICY_VIOLATION` condition (:func:`condition`) and their findings.
    """
    policy_list = list(policies)
    items = list(profiles)
    by_ns: dict[str, dict[str, Mapping[str, Any]]] = {}
    for ns, name, spec in items:
        by_ns.setdefault(ns, {})[name] = spec
    labels = namespace_labels or {}
    out: dict[str, list[Finding]] = {}
    for ns, name, spec in items:
        specs = by_ns[ns]

        def lookup(base: str, specs: Mapping[str, Mapping[str, Any]] = specs) -> Mapping[str, Any] | None:
            return specs.get(base)

        found = check(spec, ns, policy_list, namespace_labels=labels.get(ns), lookup_base=lookup)
        if found:
            out[f"{ns}/{name}"] = found
    return out


def condition(findings: Sequence[Finding], *, generation: int | None, now: str) -> dict[str, Any]:
    """The ``PolicyViolation`` condition for a profile's status.

    ``status: "True"`` with reason ``PolicyViolation`` and the first findings as message
    when ``findings`` holds an error or a warning, else ``"False"`` with ``Compliant``.
    ``now`` is the RFC 3339 transition time (the caller keeps it when status is unchanged).
    """
    bad = [f for f in findings if f.severity in (Severity.ERROR, Severity.WARNING)]
    return {
        "type": COND_POLICY_VIOLATION,
        "status": "True" if bad else "False",
        "reason": REASON_POLICY_VIOLATION if bad else REASON_COMPLIANT,
        "message": admission_message(bad, 3)[: c.MESSAGE_CAP] if bad else "complies with every SeccompPolicy",
        "observedGeneration": generation,
        "lastTransitionTime": now,
    }


class PolicyIndex:
    """What the controller (and its webhook) knows of SeccompPolicies and namespace labels.

    Fed by watch events (:meth:`observe_policy`, :meth:`observe_namespace`); pure and
    synchronous.  A malformed policy (the CRD schema normally prevents it) is left out
    and listed in :attr:`problems` by name.

    Attributes:
        policies: parsed policies by name.
        namespace_labels: labels by namespace name.
        problems: why each left-out policy could not be used, by policy name.
    """

    def __init__(self) -> None:
        self.policies: dict[str, Policy] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.problems: dict[str, str] = {}

    def observe_policy(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """Apply one SeccompPolicy watch event; True if the set of policies changed."""
        meta = body.get("metadata") or {}
        name = meta.get("name") if isinstance(meta, Mapping) else None
        if not isinstance(name, str):
            return False
        before = self.policies.get(name)
        if event_type == "DELETED":
            self.policies.pop(name, None)
            self.problems.pop(name, None)
            return before is not None
        try:
            parsed = parse_policy(body)
        except PolicyError as e:
            self.policies.pop(name, None)
            self.problems[name] = str(e)
            return before is not None
        self.problems.pop(name, None)
        self.policies[name] = parsed
        return before != parsed

    def observe_namespace(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """Apply one Namespace watch event; True if that namespace's labels changed."""
        meta = body.get("metadata") or {}
        name = meta.get("name") if isinstance(meta, Mapping) else None
        if not isinstance(name, str):
            return False
        before = self.namespace_labels.get(name)
        if event_type == "DELETED":
            self.namespace_labels.pop(name, None)
            return before is not None
        raw = meta.get("labels") or {}
        labels = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
        self.namespace_labels[name] = labels
        return before != labels

    def check(
        self, profile_spec: object, namespace: str, *, lookup_base: LookupBase | None = None
    ) -> list[Finding]:
        """:func:`check` with the known policies and the namespace's labels."""
        return check(
            profile_spec,
            namespace,
            self.policies.values(),
            namespace_labels=self.namespace_labels.get(namespace),
            lookup_base=lookup_base,
        )

    def violations(self, profiles: Iterable[tuple[str, str, Mapping[str, Any]]]) -> dict[str, list[Finding]]:
        """:func:`violations` with the known policies and namespace labels."""
        return violations(profiles, self.policies.values(), self.namespace_labels)


__all__ = [
    "ALLOWING_ACTIONS",
    "ALLOW_ALL_DEFAULTS",
    "COND_POLICY_VIOLATION",
    "HIGH_RISK_SYSCALLS",
    "POLICY_KIND",
    "POLICY_PLURAL",
    "Enforcement",
    "Policy",
    "PolicyError",
    "PolicyIndex",
    "Requirement",
    "Selector",
    "admission_message",
    "check",
    "condition",
    "parse_policies",
    "parse_policy",
    "violations",
]
