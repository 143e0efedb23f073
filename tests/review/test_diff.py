"""`extsvc diff`: golden reports per kind of change, classification, exit codes, JSON schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.format import load
from extsvc.compiler.format.schemas import validator
from extsvc.compiler.review.diff import (
    ChangeKind,
    CompiledOutput,
    Privilege,
    diff_outputs,
    exit_status,
)
from extsvc.compiler.review.outputs import compile_directory
from tests.review.cases import BASE, cases, diff_case, expected

CASES = cases("diff")
HERE = Path(__file__).parent


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_diff_matches_its_golden_report(case: Path) -> None:
    produced = diff_case(case)
    assert expected(case, produced) == produced, "run `make golden` and review the diff"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_json_report_follows_the_published_schema(case: Path) -> None:
    report = json.loads(diff_case(case)["expected.json"])
    assert list(validator("diff").iter_errors(report)) == []
    assert report["changes"], "every golden case has at least one change"


def test_every_classification_has_a_golden() -> None:
    seen = {
        change["privilege"]
        for case in CASES
        for change in json.loads((case / "expected.json").read_text())["changes"]
    }
    assert seen == {p.value for p in Privilege}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_report_leads_with_privilege_plus(case: Path) -> None:
    changes = json.loads((case / "expected.json").read_text())["changes"]
    ranks = {"privilege+": 0, "privilege-": 1, "neutral": 2}
    for service in {c["service"] for c in changes}:
        own = [ranks[c["privilege"]] for c in changes if c["service"] == service]
        assert own == sorted(own)
    if any(c["privilege"] == "privilege+" for c in changes):
        assert changes[0]["privilege"] == "privilege+"


def _output(
    configs: dict[str, dict], plan_services: dict[str, dict] | None = None
) -> CompiledOutput:  # type: ignore[type-arg]
    services = plan_services or {sid: {"source": "x.yaml", "restart": "always"} for sid in configs}
    return CompiledOutput(plan={"services": services}, configs=configs)


def test_identical_outputs_have_no_changes() -> None:
    config = {"process": {"args": ["/x"], "env": ["A=1"]}, "root": {"readonly": True}}
    assert (
        diff_outputs(_output({"ext-a": config}), _output({"ext-a": json.loads(json.dumps(config))}))
        == []
    )


def test_an_unknown_field_is_still_reported_as_a_neutral_change() -> None:
    old = _output({"ext-a": {"hostname": "a"}})
    new = _output({"ext-a": {"hostname": "b", "annotations": {"k": "v"}}})
    changes = diff_outputs(old, new)
    assert [(c.field, c.privilege) for c in changes] == [
        ("annotations", Privilege.NEUTRAL),
        ("hostname", Privilege.NEUTRAL),
    ]


def test_environment_values_are_masked_unless_asked_for() -> None:
    old = _output({"ext-a": {"process": {"env": ["TOKEN=old-secret"]}}})
    new = _output({"ext-a": {"process": {"env": ["TOKEN=new-secret"]}}})
    (masked,) = diff_outputs(old, new)
    assert (masked.old, masked.new) == ("***", "***")
    assert "secret" not in repr(masked)
    (shown,) = diff_outputs(old, new, show_values=True)
    assert (shown.old, shown.new) == ("old-secret", "new-secret")


def test_a_device_rule_that_widens_access_is_privilege_plus() -> None:
    narrow = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
    ]
    wide = [{"allow": True, "access": "rwm"}]
    old = _output({"ext-a": {"linux": {"resources": {"devices": narrow}}}})
    new = _output({"ext-a": {"linux": {"resources": {"devices": wide}}}})
    (change,) = diff_outputs(old, new)
    assert change.privilege is Privilege.MORE
    assert "other char devices +rwm" in change.summary


def test_a_higher_or_removed_limit_is_privilege_plus() -> None:
    def with_memory(memory: dict) -> CompiledOutput:  # type: ignore[type-arg]
        return _output({"ext-a": {"linux": {"resources": {"memory": memory}}}})

    (raised,) = diff_outputs(with_memory({"limit": 100}), with_memory({"limit": 200}))
    (removed,) = diff_outputs(with_memory({"limit": 100}), with_memory({}))
    (lowered,) = diff_outputs(with_memory({"limit": 200}), with_memory({"limit": 100}))
    assert [raised.privilege, removed.privilege, lowered.privilege] == [
        Privilege.MORE,
        Privilege.MORE,
        Privilege.LESS,
    ]


def test_seccomp_removed_entirely_is_privilege_plus() -> None:
    old = _output({"ext-a": {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}})
    new = _output({"ext-a": {"linux": {}}})
    (change,) = diff_outputs(old, new)
    assert (change.kind, change.privilege) == (ChangeKind.REMOVED, Privilege.MORE)


def test_fail_on_privilege_counts_only_privilege_plus() -> None:
    neutral = diff_outputs(
        _output({"ext-a": {"process": {"args": ["/a"]}}}),
        _output({"ext-a": {"process": {"args": ["/b"]}}}),
    )
    assert exit_status(neutral, "change") == 1
    assert exit_status(neutral, "privilege") == 0
    assert exit_status([], "change") == 0


# ----- the command line


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["diff", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_cli_exit_codes_follow_diff() -> None:
    case = HERE / "diff" / "args"
    assert _invoke(str(case / "old"), str(case / "old")) == (0, "", "")
    code, out, _ = _invoke(str(case / "old"), str(case / "new"))
    assert code == 1
    assert out == (case / "expected.txt").read_text()
    assert _invoke(str(case / "old"), str(case / "new"), "--fail-on", "privilege")[0] == 0
    rootfs = HERE / "diff" / "rootfs-writable"
    assert _invoke(str(rootfs / "old"), str(rootfs / "new"), "--fail-on", "privilege")[0] == 1


def test_cli_usage_and_input_errors_exit_2(tmp_path: Path) -> None:
    case = HERE / "diff" / "args"
    assert _invoke(str(case / "old"))[0] == 2
    code, _, err = _invoke(str(case / "old"), str(tmp_path / "missing"))
    assert code == 2
    assert "no such file or directory" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "app.yaml").write_text("name: app\ncontainer: {}\nrestart: always\n")
    code, _, err = _invoke(str(case / "old"), str(broken))
    assert code == 2
    assert "app.yaml:2:" in err and "Traceback" not in err


def test_a_side_given_as_one_file_is_named_once(tmp_path: Path) -> None:
    """`diff out afile` named the file 'afile/afile' in its diagnostics."""
    case = HERE / "diff" / "args"
    broken = tmp_path / "app.yaml"
    broken.write_text("name: app\ncontainer: {}\nrestart: always\n")
    code, _, err = _invoke(str(case / "old"), str(broken))
    assert code == 2
    assert err.startswith(f"{broken}:2:1: error: container: missing required field")
    assert err.splitlines()[-1] == f"extsvc: {broken}: does not compile"
    assert f"{broken}/" not in err


def test_a_broken_compiled_output_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    """plan.json and config.json problems read as every other input's: file:line:col."""
    case = HERE / "diff" / "args"
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["compile", str(case / "old"), "-o", str(out)]).exit_code == 0
    plan = (out / "plan.json").read_text()
    (out / "plan.json").write_text(plan.replace('"arch": "amd64"', '"arch": 5', 1))
    code, _, err = _invoke(str(case / "old"), str(out))
    assert code == 2
    line = next(n for n, text in enumerate(plan.splitlines(), 1) if '"arch"' in text)
    assert f"{out}/plan.json:{line}:11: error: arch: 5 is not one of" in err
    (out / "plan.json").write_text(plan)
    config = next(out.glob("bundles/*/config.json"))
    config.write_text("{\n  oops\n")
    code, _, err = _invoke(str(case / "old"), str(out))
    assert code == 2
    assert f"{config}:2:3: invalid config JSON" in err and "Traceback" not in err


def test_cli_compares_a_compiled_output_with_sources(tmp_path: Path) -> None:
    case = HERE / "diff" / "environment"
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["compile", str(case / "old"), "-o", str(out)]).exit_code == 0
    code, stdout, _ = _invoke(str(out), str(case / "new"), "--output", "json")
    assert code == 1
    report = json.loads(stdout)
    assert list(validator("diff").iter_errors(report)) == []
    assert report["changes"] == json.loads((case / "expected.json").read_text())["changes"]
    assert "s3cret" not in stdout and "0ther" not in stdout


def test_cli_shows_values_only_when_asked(tmp_path: Path) -> None:
    case = HERE / "diff" / "environment"
    _, stdout, _ = _invoke(str(case / "old"), str(case / "new"), "--show-values")
    assert "s3cret → 0ther" in stdout


def test_no_colour_in_a_pipe_or_with_no_color() -> None:
    case = HERE / "diff" / "rootfs-writable"
    _, stdout, _ = _invoke(str(case / "old"), str(case / "new"))
    assert "\033[" not in stdout  # CliRunner's stdout is not a terminal
    from extsvc.compiler.review import diffreport
    from tests.review.cases import _compile

    changes = diff_outputs(_compile(case / "old", "old"), _compile(case / "new", "new"))
    assert "\033[31mprivilege+" in diffreport.render_text(changes, colour=True)


def test_colour_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    from extsvc.compiler import cli_review

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli_review._colour_wanted()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli_review._colour_wanted()


def test_schema_command_prints_the_diff_schema() -> None:
    result = CliRunner().invoke(cli, ["schema", "--diff"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "extsvc diff report (v1)"


def test_diff_inputs_are_left_untouched(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(HERE / "diff" / "args", case)
    before = sorted(p.relative_to(case) for p in case.rglob("*"))
    _invoke(str(case / "old"), str(case / "new"))
    assert sorted(p.relative_to(case) for p in case.rglob("*")) == before


def test_other_bundle_files_are_compared_by_digest_only() -> None:
    def output(content: bytes | None) -> CompiledOutput:
        files = {} if content is None else {"bundles/a/config/etc-app.conf": content}
        plan = {"services": {"ext-a": {"source": "a.yaml", "bundle": "bundles/a"}}}
        return CompiledOutput(plan=plan, configs={"ext-a": {}}, files=files)

    (changed,) = diff_outputs(output(b"password=old"), output(b"password=new"))
    assert (changed.field, changed.kind, changed.privilege) == (
        "bundle[config/etc-app.conf]",
        ChangeKind.CHANGED,
        Privilege.NEUTRAL,
    )
    assert "password" not in repr(changed) and changed.new.startswith("sha256:")
    (added,) = diff_outputs(output(None), output(b"x"))
    assert added.kind is ChangeKind.ADDED
    assert diff_outputs(output(b"same"), output(b"same")) == []


def test_baked_configuration_is_diffed_without_its_secrets() -> None:
    case = HERE / "diff" / "service-config"
    report = (case / "expected.txt").read_text() + (case / "expected.json").read_text()
    assert "bundle[config/usr-local-etc-nut-upsmon.conf]" in report
    for secret in ("MONITOR ups@localhost", "10.0.0.1", "bgpd ospfd", "netclient"):
        assert secret not in report


def test_each_file_of_a_source_directory_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telling a file's kind (service or ExtensionServiceConfig) reads its first document;
    compiling it then uses the same parse, not a second one."""
    parsed: list[str] = []

    def counted(file: str, text: str) -> Any:
        parsed.append(file)
        return compose(file, text)

    compose = load.compose_documents
    monkeypatch.setattr(load, "compose_documents", counted)
    compile_directory(
        HERE / "diff" / "service-config" / "new", rootfs_base=BASE, arch="amd64", label="new"
    )

    assert sorted(parsed) == ["new/frr.yaml", "new/node-a.yaml", "new/nut.yaml", "new/plain.yaml"]


def test_a_health_check_is_judged_by_the_process_it_runs_as() -> None:
    """Absent ``user``: the check runs as the service's uid (config.json), so a check
    added as root to a service that is not is privilege+, and one that leaves root for
    its service's uid 1000 is privilege-."""
    from extsvc.compiler.review.diff.policy import compare_policy

    check = {"exec": ["/check"], "interval": 30.0, "user": {"uid": 0, "gid": 0}}
    added = list(compare_policy("ext-x", {}, {"health": check}, service_uids=(1000, 1000)))
    assert [(c.field, c.privilege.value) for c in added] == [
        ("policy.health", "neutral"),
        ("policy.health.user", "privilege+"),
    ]
    as_service = {**check, "user": None}
    left_root = list(
        compare_policy("ext-x", {"health": check}, {"health": as_service}, (1000, 1000))
    )
    assert [(c.field, c.privilege.value, c.summary) for c in left_root] == [
        ("policy.health.user", "privilege-", "uid 0, gid 0 → the service's user (uid 1000)")
    ]
