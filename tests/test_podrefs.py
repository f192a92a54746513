"""Which profiles a pod uses: all four places of a pod spec, and only our managed paths."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from seccomp_operator import podrefs


def fields_pod(reference_dir: Path) -> dict[str, Any]:
    """The Kubernetes docs' pod with a seccompProfile in every place (read in place)."""
    doc: dict[str, Any] = yaml.safe_load((reference_dir / "kubernetes-website/pods/fields.yaml").read_text())
    return doc


def localhost(path: str) -> dict[str, Any]:
    return {"seccompProfile": {"type": "Localhost", "localhostProfile": path}}


def test_reference_pod_all_four_places(reference_dir: Path) -> None:
    pod = fields_pod(reference_dir)
    # As published: only the container uses a Localhost profile, not one of ours.
    assert podrefs.localhost_references(pod) == [("containers[0]", "my-profile.json")]
    assert podrefs.profiles_used(pod) == frozenset()
    # Point each of the four places at one of our profiles in turn.
    places = {
        "pod": lambda p: p["spec"].__setitem__("securityContext", localhost("seccomp-operator/ns/a.json")),
        "containers[0]": lambda p: p["spec"]["containers"][0].__setitem__(
            "securityContext", localhost("seccomp-operator/ns/b.json")
        ),
        "initContainers[0]": lambda p: p["spec"]["initContainers"][0].__setitem__(
            "securityContext", localhost("seccomp-operator/ns/c.json")
        ),
        "ephemeralContainers[0]": lambda p: p["spec"]["ephemeralContainers"][0].__setitem__(
            "securityContext", localhost("seccomp-operator/other/d.json")
        ),
    }
    expected = {
        "pod": "ns/a",
        "containers[0]": "ns/b",
        "initContainers[0]": "ns/c",
        "ephemeralContainers[0]": "other/d",
    }
    for place, set_it in places.items():
        one = copy.deepcopy(fields_pod(reference_dir))
        set_it(one)
        refs = dict(podrefs.localhost_references(one))
        assert place in refs
        assert expected[place] in podrefs.profiles_used(one)
    every = copy.deepcopy(pod)
    for set_it in places.values():
        set_it(every)
    assert podrefs.profiles_used(every) == frozenset(expected.values())
    assert [p for p, _ in podrefs.localhost_references(every)] == list(places)


def test_only_managed_paths_are_ours() -> None:
    assert podrefs.profile_key_of("seccomp-operator/demo/deny-mkdir.json") == "demo/deny-mkdir"
    assert podrefs.profile_key_of("./seccomp-operator//demo/deny-mkdir.json") == "demo/deny-mkdir"
    for other in (
        "my-profile.json",
        "operator/demo/x.json",
        "seccomp-operator/demo/x.yaml",
        "seccomp-operator/demo/sub/x.json",
        "seccomp-operator/../etc/x.json",
        "seccomp-operator/Demo/x.json",
        "/seccomp-operator/demo/x.json",
    ):
        assert podrefs.profile_key_of(other) is None, other


def test_finished_pods_and_legacy_annotations() -> None:
    pod: dict[str, Any] = {
        "metadata": {
            "annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "localhost/seccomp-operator/ns/p.json",
                "container.seccomp.security.alpha.kubernetes.io/app": "localhost/seccomp-operator/ns/q.json",
                "unrelated": "localhost/seccomp-operator/ns/r.json",
            }
        },
        "spec": {
            "containers": [{"name": "app", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}]
        },
        "status": {"phase": "Running"},
    }
    assert podrefs.profiles_used(pod) == frozenset({"ns/p", "ns/q"})
    pod["status"]["phase"] = "Succeeded"
    assert podrefs.profiles_used(pod) == frozenset()
    assert podrefs.profiles_used({"spec": {"containers": "not a list", "securityContext": 3}}) == frozenset()
