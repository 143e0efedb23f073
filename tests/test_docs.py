"""The command examples of README.md and docs/ are what the commands print (tests/docs.py)."""

from __future__ import annotations

import difflib
import os

import pytest

from tests.docs import REPO, ROOT_SCENES, Block, all_blocks, excerpt_missing, produced, table_rows
from tests.support.ci import cannot_run

BLOCKS = all_blocks()
EXAMPLES = [block for block in BLOCKS if block.kind == "example"]
EXCERPTS = [block for block in BLOCKS if block.kind == "excerpt"]


def test_every_block_that_shows_a_command_and_its_output_is_checked() -> None:
    unmarked = [block.where for block in BLOCKS if block.shows_commands and block.kind is None]
    assert not unmarked, "mark them <!-- example: SCENE --> (tests/docs.py)"
    assert all(block.shows_commands for block in EXAMPLES)
    assert len(EXAMPLES) >= 10  # a parser that found nothing would pass everything


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda block: block.where)
def test_the_example_is_what_the_commands_print(block: Block) -> None:
    if block.argument in ROOT_SCENES and os.geteuid() != 0:
        cannot_run("this example needs root")
    now = produced(block)
    difference = "\n".join(
        difflib.unified_diff(block.lines, now, "documented", "printed", lineterm="")
    )
    assert now == block.lines, f"{block.where}: run `make golden` and review the diff\n{difference}"


@pytest.mark.parametrize("block", EXCERPTS, ids=lambda block: block.where)
def test_an_excerpt_quotes_its_golden_file(block: Block) -> None:
    assert excerpt_missing(block) == [], f"{block.where}: not in {block.argument}"


def _options(words: list[str]) -> tuple[str, set[str]]:
    """The command ``extsvc WORDS...`` names (a group's subcommand included) and every
    option it takes (run: its argparse parser, without click)."""
    import click

    from extsvc.cli import cli

    if words[0] == "run":
        from extsvc.executor.cli.run import parser

        return "run", {option for action in parser()._actions for option in action.option_strings}
    found = cli.get_command(click.Context(cli), words[0])
    assert found is not None, f"no command {words[0]!r}"
    name = words[0]
    if isinstance(found, click.Group):
        name = f"{words[0]} {words[1]}"
        found = found.get_command(click.Context(found), words[1])
        assert found is not None, f"no command {name!r}"
    options = {"-h", "--help"}
    for param in found.params:
        options.update(param.opts, param.secondary_opts)
    return name, options


USAGE = [
    (block.where, line.split(" # ")[0])
    for block in BLOCKS
    if block.kind is None
    for line in block.lines
    if line.startswith("extsvc ")
]


@pytest.mark.parametrize(("where", "line"), USAGE, ids=[line for _, line in USAGE])
def test_a_usage_line_names_a_command_and_options_that_exist(where: str, line: str) -> None:
    """The command lists (commands without output) cannot name a command or an option
    the CLI does not have."""
    import re

    name, options = _options(line.split()[1:3])
    named = set(re.findall(r"(?<![\w/~-])(--?[A-Za-z][\w-]*)", line.partition(name)[2]))
    assert named <= options, f"{where}: {line}"


def test_the_options_table_of_run_shows_run_s_own_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each default the table writes, read by the option's own parser, is the default
    `extsvc run` has (executor.options, executor.locations): the table cannot drift."""
    from extsvc.executor.cli.run import parser

    monkeypatch.delenv("EXTSVC_STATE_DIR", raising=False)
    monkeypatch.delenv("EXTSVC_LOG_DIR", raising=False)
    actions = {option: action for action in parser()._actions for option in action.option_strings}
    # "`--host-services FILE`" and "`-q/--quiet`" name --host-services and --quiet.
    rows = {
        cells[0].strip("`").split()[0].split("/")[-1]: cells[1].strip("`")
        for cells in table_rows(REPO / "docs" / "executor.md", "Options of `run`")
    }
    assert set(rows) == {a.option_strings[-1] for a in set(actions.values())} - {"--help"} - {
        "--metrics-file",
        "--metrics-listen",  # in docs/metrics.md
    }
    for option, written in rows.items():
        action = actions[option]
        if written in ("none", "off"):
            assert action.default in (None, False), option
            continue
        value = written.removesuffix("` on PATH")
        read = action.type(value) if callable(action.type) else value
        assert read == action.default, f"{option}: the table says {written}"
