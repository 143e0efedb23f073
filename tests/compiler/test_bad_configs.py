"""Bad configuration input: every rule for ExtensionServiceConfig documents and
environment files, with its exact message, position and exit code (see
``bad_configs/README.md``); and secrets never printed."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli

CASES_ROOT = Path(__file__).parent / "bad_configs"
CASES = sorted(path for path in CASES_ROOT.iterdir() if path.is_dir())


def validate(case: Path) -> tuple[str, int]:
    env_file = case / "app.env"
    args = (
        ["--env-file", "app.env"]
        if env_file.exists()
        else sorted(p.name for p in case.glob("*.yaml"))
    )
    with contextlib.chdir(case):
        result = CliRunner().invoke(cli, ["validate", *args], catch_exceptions=False)
    return result.stderr, result.exit_code


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_configuration_input(case: Path) -> None:
    output, exit_code = validate(case)
    assert output + f"exit: {exit_code}\n" == (case / "expected.txt").read_text()


SECRETS = ("hunter2", "12345", "s3cret")


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    """Contents and values stay out of every diagnostic, whatever is wrong around them."""
    (tmp_path / "hello.yaml").write_text(
        "name: hello\ncontainer:\n  entrypoint: ./x\nrestart: never\n"
    )
    (tmp_path / "config.yaml").write_text(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: hello\n"
        "configFiles:\n  - content: |\n      password = s3cret\n    mountPth: /etc/x\n"
        "  - {content: 12345, mountPath: /etc/y}\n"
        "environment: [PASSWORD=hunter2, {A: 1}]\n"
    )
    (tmp_path / "app.env").write_text('PASSWORD="hunter2\nTOKEN=12345\tx\n')
    with contextlib.chdir(tmp_path):
        result = CliRunner().invoke(
            cli,
            ["validate", "hello.yaml", "config.yaml", "--env-file", "app.env"],
            catch_exceptions=False,
        )
    assert result.exit_code == 1
    assert result.stderr.count(": error: ") == 6
    for secret in SECRETS:
        assert secret not in result.stderr + result.stdout
