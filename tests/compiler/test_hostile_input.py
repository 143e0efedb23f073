"""Hostile input: what a file crafted to break the compiler or fool its reader gets.

Each fault below is a test here or a case under ``bad_inputs/``
(which also checks exit code 1, no traceback and an untouched OUT):

* ``restart: !!int 0xZZ`` (was a ValueError): ``bad_inputs/yaml-int-tag-not-a-number``;
* ``container: &c {..., <<: *c}`` (RecursionError): ``bad_inputs/yaml-merge-key-into-itself``
  and the merge chains below;
* a tagged integer of 4,000 digits (ValueError in schemacheck's messages):
  ``bad_inputs/tagged-integer-4000-digits``;
* keys with a newline or terminal escapes: ``bad_inputs/newline-and-escapes-in-key-and-value`` and
  the escaping tests below;
* 49,000 unknown keys (9 s in difflib): the "did you mean" bound below
  (``bench/hostile_bench.py`` times it);
* a secret in an environment entry without ``=``: ``bad_inputs/environment-secret-*`` and
  the secret tests below;
* a NUL byte in a mount source: ``bad_inputs/mount-source-nul`` (``args-nul``,
  ``*-control-characters``, ``mount-*-dotdot`` refuse the rest).
* numbers past what the runtime takes (``memory: 0x`` and 4,000 ``f``, a ValueError in
  ``json.dumps``; ``cpus: 1e400`` or ``.nan``, an OverflowError; ``cpus: 1e300``, reported
  as an extsvc bug): ``bad_inputs/x-extsvc-{cpus,memory,pids,counts,duration}-*`` and
  the bounds below.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.check import check_sources
from extsvc.compiler.format.diagnostics import (
    MAX_SUGGESTIONS,
    Diagnostic,
    Position,
    Severity,
    escape,
)
from extsvc.compiler.format.load import MAX_DEPTH, iter_documents
from extsvc.compiler.format.plan import creatable_mount_source
from extsvc.compiler.format.schemacheck import compile_schema
from extsvc.compiler.sources import SourceFile

# C0 and C1 controls but tab, DEL, line/paragraph separators, bidi overrides.
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")


def run(*args: str, cwd: Path) -> tuple[int, str]:
    """The real CLI in-process; a Python exception propagates (and fails the test)."""
    import contextlib

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def headlines(text: str) -> list[str]:
    return [d.headline() for d in check_sources([SourceFile("f.yaml", text.encode())]).diagnostics]


# --- Escaping: nothing from the input reaches the terminal raw ---------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("rlo\u202eoverride\u2066", "rlo\\u202eoverride\\u2066"),
        ("tab\t", "tab\\t"),
        ("plain é ü 日本 🙂", "plain é ü 日本 🙂"),
    ],
)
def test_escape_writes_every_control_character_as_an_escape(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_escape_keeps_tabs_for_source_lines_only() -> None:
    assert escape("\tkey: 1", keep_tabs=True) == "\tkey: 1"
    assert escape("\tkey: 1") == "\\tkey: 1"


def test_every_part_of_a_rendered_diagnostic_is_escaped() -> None:
    """A hostile file name, field, message, hint and source line still render as exactly
    four lines, with no control character but the tab of the source line."""
    evil = "x\nspoofed.yaml:1:1: error: \x1b[2J\x07\u202e"
    diagnostic = Diagnostic(
        file=f"{evil}.yaml",
        position=Position(1, 6),
        severity=Severity.ERROR,
        message=f"unknown field {evil}",
        field=f"container.{evil}",
        hint=f"did you mean {evil}?",
        source_line=f"\t\x1b[1m{evil}: 1",
    )
    lines = diagnostic.render().split("\n")

    assert len(lines) == 4
    assert not any(UNSAFE.search(line) for line in lines)
    assert lines[1] == "    \t\\x1b[1mx\\nspoofed.yaml:1:1: error: \\x1b[2J\\x07\\u202e: 1"
    # The caret stays under column 6, the "x" after the (escaped) ESC sequence.
    assert lines[2] == "    \t" + " " * len("\\x1b[1m") + "^"


def test_a_key_with_a_newline_cannot_pass_for_another_files_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        'name: a\ncontainer:\n  entrypoint: ./a\n  "x\\nb.yaml:1:1: error: fake": 1\n'
        "restart: always\n"
    )
    _, output = run("validate", "a.yaml", cwd=tmp_path)

    assert "a.yaml:4:3: warning: container.x\\nb.yaml:1:1: error: fake: " in output
    assert not any(line.startswith("b.yaml:") for line in output.splitlines())
    assert not UNSAFE.search(output.replace("\n", ""))


def test_a_file_name_with_control_characters_is_escaped(tmp_path: Path) -> None:
    name = "evil\x1b]0;title\x07.yaml"
    (tmp_path / name).write_text("name: [\n")
    code, output = run("validate", name, cwd=tmp_path)

    assert code == 1
    assert "evil\\x1b]0;title\\x07.yaml:2:1: error: invalid YAML" in output
    assert not UNSAFE.search(output.replace("\n", ""))


# --- Loader: tags, merge keys, big numbers --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown", "complaint"),
    [
        ("!!int 0xZZ", "'0xZZ'", "is not an integer"),
        ("!!int 0o9", "'0o9'", "is not an integer"),
        ("!!int ''", "''", "is not an integer"),
        ("!!int 12abc", "'12abc'", "is not an integer"),
        ("!!float 1.2.3", "'1.2.3'", "is not a number"),
        ("!!int 1e5", "'1e5'", "is not an integer"),
    ],
)
def test_a_tagged_value_that_is_not_a_number_is_a_diagnostic(
    value: str, shown: str, complaint: str
) -> None:
    """The tag's complaint, and the schema's about the string the value stays."""
    tag = value.split()[0]
    assert headlines(f"name: a\ncontainer:\n  entrypoint: ./a\nrestart: {value}\n") == [
        f"f.yaml:4:10: error: restart: {shown} is not one of 'always', 'never', 'untilSuccess'",
        f"f.yaml:4:10: error: restart: value tagged {tag} {complaint}",
    ]


def test_a_mapping_merged_into_itself_is_a_diagnostic() -> None:
    found = headlines("name: a\ncontainer: &c {entrypoint: ./a, <<: *c}\nrestart: always\n")
    assert found == ["f.yaml:2:12: error: container: a merge key (<<) merges a mapping into itself"]


def test_a_mapping_merged_into_its_own_child_is_a_diagnostic() -> None:
    text = "name: a\ncontainer: &c\n  entrypoint: ./a\n  security: {<<: *c}\nrestart: always\n"
    # The merge stops where it would recurse; what it did bring in is then checked.
    assert headlines(text) == [
        "f.yaml:2:12: error: container.security.security: a merge key (<<) merges a mapping "
        "into itself",
        "f.yaml:3:3: error: container.security.entrypoint: unknown field 'entrypoint'",
        "f.yaml:4:3: error: container.security.security: unknown field 'security'",
    ]


def test_a_long_chain_of_merge_keys_is_refused_not_a_recursion_error() -> None:
    """Each anchor merges the previous one: the chain is as deep as the file is long."""
    anchors = ["a0: &a0 {x: 1}"] + [f"a{i}: &a{i} {{<<: *a{i - 1}}}" for i in range(1, 3000)]
    text = "\n".join(anchors) + "\nname: a\ncontainer: {<<: *a2999, entrypoint: ./a}\n"
    (problem,) = [line for line in headlines(text) if "merge keys" in line]
    assert f"merge keys (<<) nested more than {MAX_DEPTH} levels deep" in problem


def test_an_integer_of_thousands_of_digits_is_named_by_its_length() -> None:
    """str() of an int over 4,300 digits raises ValueError; messages never call it."""
    errors = list(compile_schema({"enum": ["always", "never"]}).iter_errors(16**4000 - 1))
    assert [e.message for e in errors] == [
        "an integer of 4,817 digits is not one of 'always', 'never'"
    ]


def test_a_decimal_of_more_than_4300_digits_is_not_an_integer() -> None:
    found = headlines(f"name: a\ncontainer:\n  entrypoint: ./a\nrestart: !!int {'9' * 5000}\n")
    assert "f.yaml:4:10: error: restart: value tagged !!int is not an integer" in found


def test_messages_cut_a_huge_key_or_value() -> None:
    key = "k" * 100_000
    found = headlines(f"name: a\ncontainer:\n  entrypoint: ./a\n  {key}: 1\nrestart: always\n")
    assert found and all(len(line) < 400 for line in found)


# --- "Did you mean": bounded cost ------------------------------------------------------------


def test_did_you_mean_stops_after_the_first_unknown_keys_of_a_document() -> None:
    """Past MAX_SUGGESTIONS unknown keys in one document they are not typos: the hint only
    lists what is allowed, which costs nothing (difflib took 9 s for 49,000 keys)."""
    keys = "".join(f"  mount{i}: 1\n" for i in range(MAX_SUGGESTIONS + 10))
    text = f"name: a\ncontainer:\n  entrypoint: ./a\n{keys}restart: always\n"
    diagnostics = check_sources([SourceFile("f.yaml", text.encode())]).diagnostics
    hints = [d.hint or "" for d in diagnostics]

    assert len(hints) == MAX_SUGGESTIONS + 10
    assert all(h == "did you mean 'mounts'?" for h in hints[:MAX_SUGGESTIONS])
    assert all(h.startswith("allowed here: entrypoint, args") for h in hints[MAX_SUGGESTIONS:])


def test_a_typo_still_gets_its_suggestion() -> None:
    text = "name: a\ncontainer:\n  entrypoint: ./a\n  security: {writableRootfs: true}\n"
    diagnostics = check_sources([SourceFile("f.yaml", (text + "restart: always\n").encode())])
    assert [d.hint for d in diagnostics.diagnostics] == ["did you mean 'writeableRootfs'?"]


# --- Secrets: an environment value is never printed --------------------------------------

SECRET = "s3cr3t-Value"

ENVIRONMENT_LAYOUTS = {
    "block": f"  environment:\n    - LOG=1\n    - TOKEN {SECRET}\n    - LOG={SECRET}\n",
    "block quoted": f'  environment:\n    - "TOKEN {SECRET}"\n    - "A=1"\n    - "A={SECRET}"\n',
    "flow": f"  environment: [A={SECRET}, TOKEN{SECRET}, A={SECRET}]\n",
    "flow quoted": f"  environment: ['A={SECRET}', '{SECRET}', \"A={SECRET}\"]\n",
    "tagged": f"  environment:\n    - !secret A={SECRET}\n    - !!int {SECRET}\n",
    "wrong type": f"  environment:\n    - {{A: {SECRET}}}\n    - [{SECRET}]\n",
    "a mapping": f"  environment:\n    TOKEN: {SECRET}\n",
    "a mapping inline": f"  environment: {{TOKEN: {SECRET}}}\n",
    "control key": f'  environment:\n    - "A\\x1b={SECRET}"\n    - "B={SECRET}\\0"\n',
}


@pytest.mark.parametrize("layout", sorted(ENVIRONMENT_LAYOUTS))
@pytest.mark.parametrize("command", ["validate", "compile"])
def test_no_diagnostic_shows_an_environment_value(
    layout: str, command: str, tmp_path: Path
) -> None:
    text = f"name: a\ncontainer:\n  entrypoint: ./a\n{ENVIRONMENT_LAYOUTS[layout]}restart: always\n"
    (tmp_path / "a.yaml").write_text(text)
    args = ["-o", "out", "--arch", "amd64"] if command == "compile" else []
    code, output = run(command, "a.yaml", *args, "--strict", cwd=tmp_path)

    assert code == 1, output  # every layout has at least a warning
    assert ": warning: " in output or ": error: " in output
    assert SECRET not in output, output
    assert "s3cr3t" not in output


def test_the_key_of_a_duplicated_entry_is_still_shown() -> None:
    text = f"name: a\ncontainer:\n  entrypoint: ./a\n  environment: [A=1, A={SECRET}]\n"
    result = check_sources([SourceFile("f.yaml", (text + "restart: always\n").encode())])
    (diagnostic,) = result.diagnostics
    assert diagnostic.source_line == "  environment: [     A=***"
    assert "A is set again" in diagnostic.message


# --- Names and paths: NUL, control characters, traversal ----------------------------------


NUL = "contains a NUL byte, which no path, name or argument can hold"
DOT_DOT = "must not contain '..' components: the path would leave the place it names"


def control(escaped: str) -> str:
    return f"contains the control character {escaped}; refused in names and paths"


SOURCE, DESTINATION = "4:21: container.mounts[0].source", "4:42: container.mounts[0].destination"


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("mounts: [{source: X, destination: /d}]", '"/var/a\\0b"', f"{SOURCE}: {NUL}"),
        ("mounts: [{source: /var/a, destination: X}]", '"/d\\0"', f"{DESTINATION}: {NUL}"),
        ("mounts: [{source: /var/a, destination: X}]", "/d/../../etc", f"{DESTINATION}: {DOT_DOT}"),
        ("mounts: [{source: X, destination: /d}]", "/var/../etc", f"{SOURCE}: {DOT_DOT}"),
        ("mounts: [{source: X, destination: /d}]", "..", f"{SOURCE}: {DOT_DOT}"),
        (
            "mounts: [{source: /var/a, destination: X}]",
            '"/d\\x1b"',
            DESTINATION + ": " + control("\\x1b"),
        ),
        (
            "mounts: [{source: /a, destination: /d, options: [X]}]",
            '"ro\\n"',
            "4:52: container.mounts[0].options[0]: " + control("\\n"),
        ),
        ("args: [X]", '"a\\0b"', f"4:10: container.args[0]: {NUL}"),
        (
            "environment: [X]",
            '"K\\n=v"',
            "4:17: container.environment[0]: environment key 'K\\n': " + control("\\n"),
        ),
        (
            "environment: [X]",
            '"K=v\\0"',
            "4:17: container.environment[0]: environment key 'K': the value contains a NUL "
            "byte, which no environment entry can hold",
        ),
        ("entrypoint: X", '"./a\\r"', "3:15: container.entrypoint: " + control("\\r")),
    ],
)
def test_names_and_paths_refuse_what_no_file_name_means(
    field: str, value: str, problem: str
) -> None:
    """``problem``: the one diagnostic, as line:col: field: message."""
    container = field.replace("X", value)
    if not container.startswith("entrypoint"):
        container = "entrypoint: ./a\n  " + container
    text = f"name: a\ncontainer:\n  {container}\nrestart: always\n"
    where, _, message = problem.partition(": ")
    assert headlines(text) == [f"f.yaml:{where}: error: {message}"]


def test_control_characters_in_args_and_values_are_kept() -> None:
    """A newline in an argument (a script) or an environment value is meant: kept."""
    text = 'name: a\ncontainer:\n  entrypoint: ./a\n  args: ["-c", "a\\nb"]\n'
    assert headlines(text + '  environment: ["A=x\\ty"]\nrestart: always\n') == []


def test_a_name_with_dot_dot_is_refused() -> None:
    assert headlines("name: ..\ncontainer:\n  entrypoint: ./a\nrestart: always\n") == [
        "f.yaml:1:7: error: name: invalid name '..': use lowercase letters, digits, '-' and '_' "
        "only"
    ]


# --- Mount sources: created only below /var and /run ----------------------------------------


@pytest.mark.parametrize(
    ("source", "creatable"),
    [
        ("/var/lib/app", True),
        ("/var/lib/app/", True),
        ("/run/app", True),
        ("/var", False),
        ("/run/", False),
        ("/etc/app", False),
        ("/dev", False),
        ("/tmp/app", False),
        ("/variable/app", False),
        ("/var/../etc", False),
        ("/var/./app", False),
        ("//var/app", False),
        ("/var//app", False),
        ("/var/app\n", False),
        ("var/app", False),
        ("tmpfs", False),
    ],
)
def test_which_mount_sources_the_executor_may_create(source: str, creatable: bool) -> None:
    assert creatable_mount_source(source) is creatable


def test_the_plan_lists_only_creatable_mount_sources(tmp_path: Path) -> None:
    mounts = "".join(
        f"    - {{source: {source}, destination: /m{i}, type: bind, options: [rbind]}}\n"
        for i, source in enumerate(["/var/lib/a", "/dev", "/etc/hosts", "/run/b", "tmpfs"])
    )
    (tmp_path / "a.yaml").write_text(
        f"name: a\ncontainer:\n  entrypoint: ./a\n  mounts:\n{mounts}restart: always\n"
    )
    code, output = run("compile", "a.yaml", "-o", "out", "--arch", "amd64", cwd=tmp_path)

    assert code == 0, output
    plan = (tmp_path / "out" / "plan.json").read_text()
    assert '"mountSources": [\n        "/var/lib/a",\n        "/run/b"\n      ]' in plan


def test_a_name_ending_in_a_newline_is_refused() -> None:
    """runc refuses such an id at start; the compiler must refuse it first."""
    found = headlines('name: "hello\\n"\ncontainer:\n  entrypoint: ./a\nrestart: always\n')
    assert found == [
        "f.yaml:1:7: error: name: invalid name 'hello\\n': "
        "use lowercase letters, digits, '-' and '_' only"
    ]


@pytest.mark.parametrize("value", [f"!custom {SECRET}", f"!!int {SECRET}", f"!!float {SECRET}"])
def test_loader_messages_never_repeat_a_value(value: str) -> None:
    """The executor prints loader problems of config documents as one-line notices: a
    tagged value there may be a secret, so no message repeats it."""
    text = f"environment:\n  - {value}\n"
    ((_, problems),) = list(iter_documents("config.yaml", text.encode()))
    assert problems and all(SECRET not in p.message for p in problems)


@pytest.mark.parametrize(
    ("mount_path", "refused"),
    [
        ("/etc/hello/app.conf", False),
        ("/etc/hello/..app.conf", False),
        ("/etc/../../x", True),
        ("/etc/hello/..", True),
        ('"/etc/app\\n.conf"', True),
        ('"/etc/app\\x1b.conf"', True),
        ('"/etc/app\\0.conf"', True),
        ("/", True),
    ],
)
def test_a_config_mount_path_cannot_traverse_or_hold_control_characters(
    mount_path: str, refused: bool, tmp_path: Path
) -> None:
    """ExtensionServiceConfig mountPath is a bind destination in the container."""
    (tmp_path / "a.yaml").write_text("name: a\ncontainer:\n  entrypoint: ./a\nrestart: always\n")
    (tmp_path / "a-config.yaml").write_text(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: a\n"
        f"configFiles:\n  - content: x\n    mountPath: {mount_path}\n"
    )
    code, output = run("validate", "a.yaml", "a-config.yaml", cwd=tmp_path)

    assert (code == 1) is refused, output
    assert ("configFiles[0].mountPath: must be an absolute file path" in output) is refused


# --- Numbers: what the runtime takes compiles, one step beyond is refused at its place -----

# (the x-extsvc lines, {} standing for the value; the field; the last value accepted;
# the first refused). Each bound and why it is there: compiler/format/ranges.py.
NUMBER_BOUNDS = [
    ("resources: {{cpus: {}}}", "resources.cpus", "8192", "8192.000001"),
    ("resources: {{cpus: {}}}", "resources.cpus", "0.01", "0.0099"),
    ("resources: {{memory: {}}}", "resources.memory", str(2**63 - 1), str(2**63)),
    ("resources: {{memory: {}}}", "resources.memory", "1", "0"),
    ("resources: {{memory: {}}}", "resources.memory", "1.0e+18", "1.0e+19"),  # YAML floats
    ("resources: {{memory: {}}}", "resources.memory", "'9223372036854775807'", "'9223372036854775808'"),  # noqa: E501
    ("resources: {{memory: {}}}", "resources.memory", "8388607Ti", "8388608Ti"),
    ("resources: {{memory: {}}}", "resources.memory", "8Ki", "0Ki"),
    ("resources: {{pids: {}}}", "resources.pids", "4194304", "4194305"),
    ("resources: {{pids: {}}}", "resources.pids", "1", "0"),
    ("restartLimit: {{count: {}, window: 1m}}", "restartLimit.count", "10000", "10001"),
    ("restartLimit: {{count: {}, window: 1m}}", "restartLimit.count", "1", "0"),
    ("health: {{exec: [/c], retries: {}}}", "health.retries", "10000", "10001"),
    ("health: {{exec: [/c], retries: {}}}", "health.retries", "1", "0"),
    ("startTimeout: {}", "startTimeout", "168h", "168h1ms"),
    ("stopTimeout: {}", "stopTimeout", "604800s", "604800.001s"),
    ("restartLimit: {{count: 1, window: {}}}", "restartLimit.window", "10080m", "10081m"),
    ("health: {{exec: [/c], interval: {}}}", "health.interval", "167h59m60s", "167h59m60.5s"),
    ("health: {{exec: [/c], timeout: {}}}", "health.timeout", "1ms", "0ms"),
    ("health: {{exec: [/c], startPeriod: {}}}", "health.startPeriod", "0s", "604801s"),
]  # fmt: skip


def block_file(line: str, value: str) -> bytes:
    service = "name: a\ncontainer:\n  entrypoint: ./a\nrestart: always\n"
    return f"{service}x-extsvc:\n  {line.format(value)}\n".encode()


@pytest.mark.parametrize(("line", "field", "accepted", "refused"), NUMBER_BOUNDS)
def test_numbers_within_what_the_runtime_takes_compile_and_one_step_beyond_is_refused(
    line: str, field: str, accepted: str, refused: str
) -> None:
    from extsvc.compiler import pipeline, render
    from extsvc.compiler.pipeline import CompileOptions

    options = CompileOptions(rootfs_base="/usr/local/lib/containers", arch="amd64")
    result = pipeline.compile([SourceFile("f.yaml", block_file(line, accepted))], options)
    assert [d.headline() for d in result.diagnostics] == []
    config = json.loads(result.files["bundles/a/config.json"])
    assert list(render.oci_config_errors(config)) == []  # and the plan passed its schema

    refused_file = [SourceFile("f.yaml", block_file(line, refused))]
    errors = check_sources(refused_file).diagnostics
    assert [(d.field, d.position.line, d.severity) for d in errors] == [
        (f"x-extsvc.{field}", 6, Severity.ERROR)
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e400", "must be greater than 0 and at most 8192"),
        ("-.inf", "must be greater than 0 and at most 8192"),
        (".nan", "must be greater than 0 and at most 8192, not NaN"),
    ],
)
def test_infinite_and_nan_cpus_are_refused(value: str, message: str) -> None:
    file = SourceFile("f.yaml", block_file("resources: {{cpus: {}}}", value))
    (problem,) = check_sources([file]).diagnostics
    assert (problem.field, problem.message) == ("x-extsvc.resources.cpus", message)


def test_the_schemas_say_the_bounds_the_compiler_checks() -> None:
    """`extsvc schema` shows the bounds, and the executor refuses a plan beyond them."""
    from extsvc.compiler.format import ranges
    from extsvc.compiler.format.schemas import schema

    block = schema("service")["$defs"]["extsvc"]["properties"]
    resources = block["resources"]["properties"]
    health = schema("service")["$defs"]["health"]["properties"]
    assert resources["memory"]["maximum"] == ranges.MAX_MEMORY_BYTES
    assert resources["cpus"]["maximum"] == ranges.MAX_CPUS
    assert resources["pids"]["maximum"] == ranges.MAX_PIDS
    assert block["restartLimit"]["properties"]["count"]["maximum"] == ranges.MAX_COUNT
    assert health["retries"]["maximum"] == ranges.MAX_COUNT
    plan = schema("plan")["$defs"]
    assert plan["count"]["maximum"] == ranges.MAX_COUNT
    assert plan["seconds"]["maximum"] == plan["positiveSeconds"]["maximum"] == ranges.MAX_SECONDS
