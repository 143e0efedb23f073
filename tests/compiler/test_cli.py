"""The command line contract: commands, exit codes (DESIGN §7), what is written."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli

HELLO = Path(__file__).parents[1] / "golden" / "hello-world" / "input"
ENV = Path(__file__).parents[1] / "golden" / "environment" / "input"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_compile_writes_plan_and_bundles(tmp_path: Path) -> None:
    code, output = run("compile", str(HELLO), "-o", str(tmp_path / "out"), "--arch", "amd64")
    assert code == 0, output
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json")
    ) == [
        "bundles/hello-world/config.json",
        "bundles/hello-world/origins.json",  # for `extsvc explain`
        "plan.json",
    ]
    assert output == f"compiled 1 service into {tmp_path / 'out'} (0 errors, 0 warnings)\n"


def test_compiling_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    run("compile", str(HELLO), "-o", str(tmp_path / "a"), "--arch", "amd64")
    run("compile", str(HELLO / "hello-world.yaml"), "-o", str(tmp_path / "b"), "--arch", "amd64")
    for name in ("plan.json", "bundles/hello-world/config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_arch_selects_the_seccomp_profile(tmp_path: Path) -> None:
    run("compile", str(HELLO), "-o", str(tmp_path / "out"), "--arch", "arm64")
    config = json.loads((tmp_path / "out/bundles/hello-world/config.json").read_text())
    assert config["linux"]["seccomp"]["architectures"] == ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]
    assert json.loads((tmp_path / "out/plan.json").read_text())["arch"] == "arm64"


def test_dry_run_prints_every_file_a_real_compile_writes_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """As `quadlet -dryrun`: each file under a ---PATH--- line, the exact bytes a real
    compile writes (same code path; --show-values: environment values too), and nothing
    on disk."""
    out, real = tmp_path / "out", tmp_path / "real"
    assert run("compile", str(ENV), "-o", str(real), "--arch", "amd64")[0] == 0
    result = CliRunner().invoke(
        cli,
        ["compile", str(ENV), "-o", str(out), "--dry-run", "--show-values", "--arch", "amd64"],
    )

    assert result.exit_code == 0, result.output
    printed = re.split(r"^---(.+)---\n", result.stdout, flags=re.MULTILINE)
    assert printed[0] == ""
    files = {
        Path(name).relative_to(out).as_posix(): content.encode()
        for name, content in zip(printed[1::2], printed[2::2], strict=True)
    }
    written = {
        p.relative_to(real).as_posix(): p.read_bytes() for p in real.rglob("*") if p.is_file()
    }
    assert files == written
    assert result.stderr.splitlines()[-1] == (
        f"would compile 2 services into {out} (0 errors, 2 warnings)"
    )
    assert not out.exists()


def test_dry_run_masks_environment_values_unless_show_values(tmp_path: Path) -> None:
    """Secrets are never printed (DESIGN): each entry's key is kept, its value is ***;
    everything else is what a real compile writes."""
    real = tmp_path / "real"
    assert run("compile", str(ENV), "-o", str(real), "--arch", "amd64")[0] == 0
    written = json.loads((real / "bundles/env/config.json").read_text())
    assert len(written["process"]["env"]) > 1

    result = CliRunner().invoke(
        cli, ["compile", str(ENV), "-o", str(tmp_path / "out"), "--dry-run", "--arch", "amd64"]
    )

    assert result.exit_code == 0, result.output
    printed = re.search(
        r"^---.*/bundles/env/config\.json---\n(.*?)^---", result.stdout, re.M | re.S
    )
    assert printed is not None
    shown = json.loads(printed.group(1))
    assert shown["process"]["env"] == [
        entry.partition("=")[0] + "=***" for entry in written["process"]["env"]
    ]
    shown["process"]["env"] = written["process"]["env"]
    assert shown == written
    for entry in written["process"]["env"]:
        if not entry.endswith("="):
            assert f'"{entry}"' not in result.stdout


def test_validate_passes_a_good_set_with_warnings_unless_strict() -> None:
    code, output = run("validate", str(ENV))
    assert (code, output.splitlines()[-1]) == (0, "2 files ok: 0 errors, 2 warnings")
    code, output = run("validate", "--strict", str(ENV))
    # Both warnings are in one of the two files.
    assert (code, output.splitlines()[-1]) == (1, "1 of 2 files invalid: 0 errors, 2 warnings")


def test_usage_errors_exit_2() -> None:
    assert run("compile", str(HELLO))[0] == 2  # no -o
    assert run("compile", str(HELLO), "-o", "x", "--rootfs-base", "relative")[0] == 2
    assert run("frobnicate")[0] == 2


def test_a_missing_input_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    code, output = run("validate", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert output.splitlines() == [
        f"{tmp_path / 'nope.yaml'}:1:1: error: no such file or directory",
        "extsvc: no service files found; nothing done",
    ]


def test_schema_prints_the_input_schema_as_json() -> None:
    code, output = run("schema")
    assert code == 0
    assert json.loads(output)["title"] == "Talos extension service"
    assert json.loads(run("schema", "--plan")[1])["title"] == "extsvc plan (v1)"


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        ("service", "Talos extension service"),
        ("config", "Talos ExtensionServiceConfig"),
        ("host-services", "extsvc host services"),
        ("plan", "extsvc plan (v1)"),
    ],
)
def test_schema_prints_each_kind(kind: str, title: str) -> None:
    code, output = run("schema", "--kind", kind)
    assert code == 0
    assert json.loads(output)["title"] == title


def test_schema_kinds_are_the_shipped_schemas() -> None:
    from extsvc.compiler.cli_compile import SCHEMA_KINDS
    from extsvc.compiler.format.schemas import SCHEMA_FILES

    assert sorted(SCHEMA_KINDS) == sorted(SCHEMA_FILES)


def test_a_fifo_or_a_device_is_refused_not_read(tmp_path: Path) -> None:
    """Opening a FIFO for reading would wait for a writer forever; it is refused at once."""
    fifo = tmp_path / "service.yaml"
    os.mkfifo(fifo)
    result = CliRunner().invoke(cli, ["validate", str(fifo), "/dev/null"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{fifo}:1:1: error: not a regular file (a FIFO); a service file is expected",
        "/dev/null:1:1: error: not a regular file (a character device); a service file is expected",
        "extsvc: no service files found; nothing done",
    ]


def test_a_fifo_in_a_source_directory_is_refused_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "hello-world.yaml").write_bytes((HELLO / "hello-world.yaml").read_bytes())
    os.mkfifo(tmp_path / "pipe.yaml")
    result = CliRunner().invoke(
        cli, ["compile", str(tmp_path), "-o", str(tmp_path / "out"), "--arch", "amd64"]
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'pipe.yaml'}:1:1: error: not a regular file (a FIFO); "
        "a service file is expected",
        "extsvc: nothing written: 1 error, 0 warnings",
    ]
    assert not (tmp_path / "out").exists()


def test_validate_counts_only_the_files_that_are_invalid(tmp_path: Path) -> None:
    """It said '3 files invalid' when one of them was."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\ncontainer:\n  entrypoint: /{name}\nrestart: always\n"
        )
    (tmp_path / "c.yaml").write_text("name: c\ncontainer:\n  entrypoint: /c\nrestart: sometimes\n")

    code, output = run("validate", str(tmp_path))

    assert code == 1
    assert output.splitlines()[-1] == "1 of 3 files invalid: 1 error, 0 warnings"
    assert run("validate", str(tmp_path / "c.yaml"))[1].splitlines()[-1] == (
        "1 file invalid: 1 error, 0 warnings"
    )
    assert (
        run("validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))[1].splitlines()[-1]
        == "2 files ok: 0 errors, 0 warnings"
    )
