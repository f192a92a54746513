"""``seccomp-operator lint``: the findings of each case's ``expected.lint.txt``, through the real CLI.

Cases are read in place from ``../shared/cases``; ``expected.lint.txt`` fixes the facts, not the
wording, so each test checks the facts (field, what is wrong, the suggestion) on the printed
lines.  Text output is one line per finding, ``FILE [NAME]: SEVERITY path: message (hint)``,
then one status line per document.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seccomp_operator import validate as v
from seccomp_operator.findings import Severity
from seccomp_operator.spec import ProfileSpec, SyscallArg, SyscallRule, parse_spec
from tests.clitools import Run, run_cli
from tests.conftest import CASES, REFERENCE


def case(prefix: str) -> Path:
    (found,) = CASES.glob(f"{prefix}-*")
    return found


@pytest.fixture
def lint(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def run(*args: str | Path) -> Run:
        return run_cli(["lint", *(str(a) for a in args)], capsys, monkeypatch)

    return run


def lines(run: Run, severity: str, doc: str = "") -> list[str]:
    """Printed finding lines of one severity (``ERROR``/``WARNING``/``INFO``), of document ``doc``."""
    out = []
    for line in run.out.splitlines():
        label, _, rest = line.partition(": ")
        if rest.startswith(f"{severity} ") and (not doc or label.endswith(f" {doc}")):
            out.append(rest)
    return out


def status(run: Run, doc: str) -> str:
    """The status line's word (OK, WARNINGS, ERRORS) for document ``doc``."""
    for line in run.out.splitlines():
        label, _, rest = line.partition(": ")
        if label.endswith(f" {doc}") and rest.split(" ")[0] in ("OK", "WARNINGS", "ERRORS"):
            return rest.split(" ")[0]
    raise AssertionError(f"no status line for {doc}:\n{run.out}")


def one(found: list[str], *needles: str) -> str:
    """The one line holding every needle."""
    hits = [line for line in found if all(n in line for n in needles)]
    assert len(hits) == 1, f"{needles} in {found}"
    return hits[0]


# --- 001: legacy name -------------------------------------------------------------------------------


def test_001_legacy_name_findings(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("001") / "input.profile.json")
    assert run.code == 2
    errors = lines(run, "ERROR")
    assert len(errors) == 2
    assert one(errors, "syscalls[2]:", '"names"', "runtimes reject it")
    assert one(
        errors, "syscalls[3]:", 'both legacy "name" and "names"', "CRI-O refuses", 'containerd ignores "name"'
    )
    warning = one(lines(run, "WARNING"), 'legacy singular "name"')
    assert "syscalls[0]" in warning and "syscalls[1]" in warning and "containerd" in warning
    assert "block nothing" in warning and '"names"' in warning
    info = one(lines(run, "INFO"), '"chmod"')
    assert '"fchmodat"' in info and '"fchmodat2"' in info and "chmod(1)" in info


# --- 002: sysdig names ------------------------------------------------------------------------------


def test_002_tracer_names(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("002") / "input.profile.json")
    assert run.code == 2
    errors = lines(run, "ERROR")
    assert one(errors, '"" is not a syscall name')
    assert one(errors, '"<unknown<"', "tracer placeholder")
    for event in ("procexit", "signaldeliver", "switch"):
        assert one(errors, f'"{event}"', "tracer event name (sysdig/falco)")
    assert one(errors, '"pread"', 'did you mean "pread64"?')
    assert one(errors, '"pwrite"', 'did you mean "pwrite64"?')
    assert len(errors) == 7
    sigreturn = one(lines(run, "WARNING"), '"sigreturn"')
    assert "SCMP_ARCH_X86 " in sigreturn and "SCMP_ARCH_X86_64" in sigreturn and '"rt_sigreturn"' in sigreturn
    assert one(lines(run, "WARNING"), "syscalls[0].name:", 'empty legacy "name"', "dropped")


# --- 004: errnoRet types ----------------------------------------------------------------------------


def test_004_errno_findings(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("004") / "input.cr.yaml")
    assert run.code == 2
    assert status(run, "deny-keyring") == "OK"
    assert one(lines(run, "INFO", "deny-keyring"), "spec.syscalls[0].errnoRet", '"38"', "number 38")
    errors = lines(run, "ERROR", "bad-errno")
    assert len(errors) == 3
    assert one(errors, "spec.syscalls[0].errnoRet", '"ENOSYS"', "write 38")
    assert one(errors, "spec.syscalls[1].errnoRet", "SCMP_ACT_ALLOW cannot return an errno")
    assert one(errors, "spec.syscalls[2].errnoRet", "65537", "16-bit")
    assert status(run, "bad-errno") == "ERRORS"


# --- 005: default errno -----------------------------------------------------------------------------


def test_005_default_errno(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("005") / "input.cr.yaml")
    assert run.code == 2
    assert status(run, "web-enosys") == "OK"
    assert not lines(run, "WARNING", "web-enosys")
    warning = one(lines(run, "WARNING", "web-eperm"), "spec.defaultAction")
    for fact in ("EPERM", '"openat2"', '"clone3"', "1.2.8", "1.3.3", "2.34", "ENOSYS", "defaultErrnoRet: 38"):
        assert fact in warning
    assert status(run, "web-eperm") == "WARNINGS"
    error = one(lines(run, "ERROR", "bad-default-errno"), "spec.defaultErrnoRet")
    assert "SCMP_ACT_ERRNO or SCMP_ACT_TRACE" in error


# --- 006: notify ------------------------------------------------------------------------------------


def test_006_notify(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("006") / "input.cr.yaml")
    assert run.code == 2
    assert one(lines(run, "ERROR", "notify-default"), "spec.defaultAction", "cannot be the default action")
    assert one(lines(run, "ERROR", "notify-write"), "spec.syscalls[0].names[0]", "write cannot be notified")
    no_socket = lines(run, "ERROR", "notify-no-socket")
    assert one(no_socket, "spec.syscalls[0].action", "needs listenerPath")
    assert one(no_socket, "spec.listenerMetadata", "listenerPath")
    assert one(lines(run, "ERROR", "notify-relative"), "spec.listenerPath", "not an absolute path")
    assert status(run, "notify-mount") == "OK"


# --- 008: action names ------------------------------------------------------------------------------


def test_008_kill_thread_info_and_spelling(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("008") / "input.cr.yaml")
    assert run.code == 2
    assert status(run, "audit-then-kill") == "OK"
    info = one(lines(run, "INFO", "audit-then-kill"), "spec.syscalls[2].action")
    assert "SCMP_ACT_KILL kills only the calling thread" in info and "SCMP_ACT_KILL_PROCESS" in info
    errors = lines(run, "ERROR", "misspelled")
    assert len(errors) == 4
    assert one(errors, "spec.defaultAction", "case-sensitive", 'did you mean "SCMP_ACT_ERRNO"?')
    assert one(errors, "spec.syscalls[0].action", 'did you mean "SCMP_ACT_ERRNO"?')
    assert one(errors, "spec.syscalls[1].action", "spaces", 'did you mean "SCMP_ACT_ALLOW"?')
    assert one(errors, "spec.syscalls[2].action", 'did you mean "SCMP_ACT_KILL_PROCESS"?')


# --- 009: Docker/moby keys --------------------------------------------------------------------------


def test_009_docker_keys_explained(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("009") / "input.profile.json")
    assert run.code == 2
    warnings = lines(run, "WARNING")
    summary = one(warnings, "not understood by containerd")
    for key in ("archMap", "includes", "excludes", "comment"):
        assert f'"{key}"' in summary
    assert "interpreted by CRI-O" in summary and "convert" in summary
    # what-containerd-would-apply.txt, fact by fact
    arch = one(warnings, "archMap:", '"architectures" is empty')
    assert "native architecture" in arch and "SCMP_ARCH_X86" in arch and "SCMP_ARCH_ARM" in arch
    caps = one(warnings, "WITH these capabilities")
    for fact in (
        "CAP_SYS_PTRACE: ptrace, process_vm_readv",
        "CAP_SYS_BOOT: reboot",
        "CAP_SYS_ADMIN: clone, unshare, mount",
    ):
        assert fact in caps
    assert "clone then is allowed without the argument restrictions" in caps
    assert one(warnings, "WITHOUT these capabilities", "CAP_SYS_ADMIN: clone")
    assert one(
        warnings,
        "only for some architectures apply on every architecture",
        "arch_prctl",
        "s390, s390x: clone",
    )
    assert one(warnings, "skipped on some architectures apply there too", "clone")
    # the parser's own refusals name every key
    errors = lines(run, "ERROR")
    assert one(errors, "archMap:", "Docker/moby extension")
    assert len([e for e in errors if ".includes:" in e or ".excludes:" in e]) == 9


# --- 010: runtime start-up syscalls -----------------------------------------------------------------


def test_010_runtime_startup_syscalls(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint("--runtime", "runc@1.3.3", case("010") / "input.cr.yaml")
    assert run.code == 0  # warnings only, no --strict
    warnings = lines(run, "WARNING", "agent-app")
    procfs = one(warnings, "runtime start-up syscalls missing for runc 1.3.3", '"openat2", "statx"')
    assert "procfs" in procfs and "operation not permitted" in procfs
    assert "defaultErrnoRet: 38" in procfs  # with ENOSYS runc would fall back (case 005)
    exec_check = one(warnings, '"faccessat2"')
    assert "exec" in exec_check and "1.1.4" in exec_check
    eperm = one(warnings, "spec.defaultAction", "EPERM")
    assert "ENOSYS" in eperm
    # the base alone misses the same calls; its own status says so
    assert one(lines(run, "WARNING", "runc-base-old"), '"openat2", "statx"')
    assert run_code_with_strict(lint) == 1


def run_code_with_strict(lint) -> int:  # type: ignore[no-untyped-def]
    return int(lint("--strict", "--runtime", "runc@1.3.3", case("010") / "input.cr.yaml").code)


@pytest.mark.parametrize(
    ("runtime", "procfs", "faccessat2"),
    [
        ("runc@1.0.0", False, False),
        ("runc@1.1.5", False, True),
        ("runc@1.3.0", False, True),
        ("runc@1.2.8", True, True),
        ("runc", True, True),
    ],
)
def test_010_runtime_lists_follow_the_release(lint, runtime: str, procfs: bool, faccessat2: bool) -> None:  # type: ignore[no-untyped-def]
    run = lint("--runtime", runtime, case("010") / "input.cr.yaml")
    warnings = lines(run, "WARNING", "agent-app")
    assert any('"openat2", "statx"' in w for w in warnings) is procfs
    assert any('"faccessat2"' in w for w in warnings) is faccessat2


def test_010_unknown_runtime_is_an_error_in_words(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint("--runtime", "youki@1.0", case("010") / "input.cr.yaml")
    assert run.code == 2
    assert '"youki"' in run.err and "crun, runc" in run.err and "runc@1.3.3" in run.err
    bad = lint("--runtime", "runc@latest", case("010") / "input.cr.yaml")
    assert bad.code == 2 and "not a version" in bad.err


def test_runtime_enosys_default_is_not_missing() -> None:
    """With defaultErrnoRet 38 runc falls back from openat2/statx/faccessat2, so they are not missing."""
    spec, _ = parse_spec(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert spec is not None
    found = v.runtime_findings(spec, v.runtime_base("runc@1.3.3"))
    assert found and all(f.severity is Severity.INFO for f in found)
    assert not any("openat2" in f.message for f in found)
    allow_all = ProfileSpec(
        default_action="SCMP_ACT_ALLOW", syscalls=(SyscallRule(names=("openat2",), action="SCMP_ACT_ERRNO"),)
    )
    (denied,) = [
        f for f in v.runtime_findings(allow_all, v.runtime_base("runc@1.4.0")) if "openat2" in f.message
    ]
    assert denied.severity is Severity.WARNING


def test_runtime_bases_data_and_provenance() -> None:
    bases = v.runtime_bases()
    assert set(bases) == {"runc", "crun"}
    newest = v.runtime_base("runc")
    assert newest.version == "1.4.0" and {"openat2", "statx", "faccessat2", "close_range"} <= set(
        newest.syscalls
    )
    assert "baseprofile-runc.yaml" in newest.source and "runc-v1.4.2" in newest.source
    assert v.runtime_base("runc@1.3.2").version == "1.3.0"
    assert v.runtime_base("runc@v1.1.5+ds1").version == "1.1.4"
    assert v.runtime_base("runc@0.1").version == "1.0.0"
    assert "openat2" not in v.runtime_base("runc@1.3.2").syscalls
    assert v.runtime_base("crun@1.26").version == "1.26"


# --- 018: strace -c generator output ----------------------------------------------------------------


def test_018_bad_generator_output(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("018") / "bad-generator-output.json")
    assert run.code == 2
    errors = lines(run, "ERROR")
    assert one(errors, "architecture:", 'did you mean "architectures"?')
    assert one(errors, '"total"', "strace -c")
    assert one(lines(run, "WARNING"), 'legacy singular "name"', "syscalls[0], syscalls[1], syscalls[2]")


# --- 020: empty names, deny-all ---------------------------------------------------------------------


def test_020_outcomes(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("020") / "input.cr.yaml")
    assert run.code == 2
    assert one(lines(run, "ERROR", "generated-empty"), "spec.syscalls[0].names", "empty", "allows nothing")
    assert one(lines(run, "WARNING", "kill-all"), "killed at start")
    assert status(run, "kill-all") == "WARNINGS"
    assert one(lines(run, "WARNING", "profile-block"), "cannot start")
    assert status(run, "profile-block") == "WARNINGS"
    assert one(lines(run, "ERROR", "allow-empty-deny"), "spec.syscalls[0].names", "empty", "no effect")


# --- 023: malformed shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "facts"),
    [
        ("input.array.json", ["JSON array", 'put it under "syscalls"']),
        ("input.path-string.json", ["JSON string", "file path", "pass the profile file's content"]),
        ("input.not-json.txt", ["not JSON (line 1, column 1)", "looks like a file path"]),
        ("input.trailing-comma.json", ["line 4", "trailing comma", "strict JSON"]),
    ],
)
def test_023_shapes(lint, file: str, facts: list[str]) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("023") / file)
    assert run.code == 2
    (error,) = lines(run, "ERROR")
    for fact in facts:
        assert fact in error


def test_023_numeric_actions(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(case("023") / "input.numeric-actions.json")
    assert run.code == 2
    errors = lines(run, "ERROR")
    assert one(errors, "default_action:", 'did you mean "defaultAction"?')
    assert one(errors, "defaultAction:", "required field is missing")
    for i in (0, 1):
        assert one(errors, f"syscalls[{i}].action:", "the number 0", '"SCMP_ACT_ERRNO"')
    assert one(lines(run, "WARNING"), 'legacy singular "name"')


# --- exit codes and output formats ------------------------------------------------------------------


def test_exit_codes(lint) -> None:  # type: ignore[no-untyped-def]
    profiles = REFERENCE / "kubernetes-website" / "profiles"
    assert lint(profiles / "audit.json").code == 0
    assert lint("--strict", profiles / "audit.json").code == 0
    assert lint(profiles / "violation.json").code == 0  # deny-all: a warning
    assert lint("--strict", profiles / "violation.json").code == 1
    assert lint(profiles / "audit.json", case("001") / "input.profile.json").code == 2
    missing = lint(case("001") / "no-such-file.json")
    assert missing.code == 2 and "cannot read" in missing.out


def test_json_output(lint) -> None:  # type: ignore[no-untyped-def]
    run = lint(
        "--output",
        "json",
        case("005") / "input.cr.yaml",
        REFERENCE / "kubernetes-website" / "profiles" / "audit.json",
    )
    doc = json.loads(run.out)
    assert doc["exitCode"] == run.code == 2
    by_name = {d["name"] or Path(d["file"]).name: d for d in doc["documents"]}
    assert by_name["web-enosys"]["status"] == "ok" and by_name["web-enosys"]["bpfInstructions"] > 0
    assert by_name["web-enosys"]["bpfLimit"] == 4096
    (warning,) = by_name["web-eperm"]["findings"]
    assert warning["severity"] == "warning" and warning["path"] == "spec.defaultAction" and warning["hint"]
    assert by_name["bad-default-errno"]["status"] == "error"
    assert by_name["audit.json"]["kind"] == "profile" and by_name["audit.json"]["status"] == "ok"


def test_base_outside_the_file_is_a_warning(lint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = (case("010") / "input.cr.yaml").read_text().split("\n---\n")[1]
    path = tmp_path / "agent-app.yaml"
    path.write_text(text)
    run = lint(path)
    assert run.code == 0
    assert one(
        lines(run, "WARNING", "agent-app"),
        "spec.baseProfileName",
        '"runc-base-old"',
        "checked without its base",
    )


# --- the reference files ----------------------------------------------------------------------------


REFERENCE_FILES = sorted(p for p in REFERENCE.rglob("*") if p.suffix in (".json", ".yaml", ".yml"))


def test_reference_files_found() -> None:
    assert len(REFERENCE_FILES) == 27


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: str(p.relative_to(REFERENCE)))
def test_lint_every_reference_file_without_a_crash(lint, path: Path) -> None:  # type: ignore[no-untyped-def]
    run = lint("--output", "json", path)
    doc = json.loads(run.out)
    assert doc["exitCode"] == run.code
    for document in doc["documents"]:
        for finding in document["findings"]:
            assert finding["severity"] in ("error", "warning", "info")
            assert finding["message"]
    if path.parent.name == "profiles" and path.parent.parent.name == "kubernetes-website":
        assert run.code != 2, run.out  # no false error on the Kubernetes documentation profiles
    if path.parent.name == "pods":
        assert run.code == 0 and "nothing to check" in run.out


def test_kubernetes_docs_profiles_are_clean_apart_from_known_warnings(lint) -> None:  # type: ignore[no-untyped-def]
    profiles = REFERENCE / "kubernetes-website" / "profiles"
    run = lint(*sorted(profiles.glob("*.json")))
    assert run.code == 0
    assert not lines(run, "ERROR")
    violation = [
        line
        for line in run.out.splitlines()
        if line.startswith(str(profiles / "violation.json")) and ": WARNING " in line
    ]
    assert len(violation) == 1 and "cannot start" in violation[0]


# --- the advice checks ------------------------------------------------------------------------------


def test_families_only_for_deny_lists() -> None:
    deny = ProfileSpec(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(SyscallRule(names=("unlink", "mkdir", "mkdirat"), action="SCMP_ACT_ERRNO"),),
    )
    (found,) = v.advise(deny)
    assert found.severity is Severity.INFO and found.path == "spec.syscalls[0].names[0]"
    assert '"unlinkat"' in found.message and "rm(1)" in found.message
    allow_list = ProfileSpec(
        default_action="SCMP_ACT_ERRNO", syscalls=(SyscallRule(names=("unlink",), action="SCMP_ACT_ALLOW"),)
    )
    assert v.advise(allow_list) == []
    conditional = SyscallRule(
        names=("chmod",), action="SCMP_ACT_ERRNO", args=(SyscallArg(index=1, value=0o4000, op="SCMP_CMP_GE"),)
    )
    assert v.advise(ProfileSpec(default_action="SCMP_ACT_ALLOW", syscalls=(conditional,))) == []
    plain = ProfileSpec(
        default_action="SCMP_ACT_LOG", syscalls=(SyscallRule(names=("chmod",), action="SCMP_ACT_ERRNO"),)
    )
    assert [f.path for f in v.advise(plain, prefix="")] == ["syscalls[0].names[0]"]


def test_advice_is_not_part_of_validation() -> None:
    """Admission, controller and agent run :func:`validate`; the infos there stay as they were."""
    spec = ProfileSpec(
        default_action="SCMP_ACT_KILL", syscalls=(SyscallRule(names=("chmod",), action="SCMP_ACT_KILL"),)
    )
    assert not any("kills only the calling thread" in f.message for f in v.validate(spec))
    kill = [f for f in v.advise(spec) if "kills only the calling thread" in f.message]
    assert [f.path for f in kill] == ["spec.defaultAction", "spec.syscalls[0].action"]


def test_foreign_format_findings_on_other_shapes() -> None:
    assert v.foreign_format_findings([1, 2]) == []
    assert v.foreign_format_findings({"defaultAction": "SCMP_ACT_ALLOW"}) == []
    crio = v.foreign_format_findings(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrno": "ENOSYS",
            "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}, "junk"],
        }
    )
    texts = [f.message for f in crio]
    assert any('"defaultErrno", "errno"' in t and "containers/common" in t for t in texts)
    assert any("default returns EPERM (1), not ENOSYS" in t for t in texts)
    assert any("these rules return EPERM" in t and 'errno "EPERM"' in t for t in texts)
