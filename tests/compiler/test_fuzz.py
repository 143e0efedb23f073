"""Property and fuzz tests of the compiler, with hypothesis.

* Valid services, generated from the format's rules, always compile: every
  config.json passes the OCI schema, the output is byte-identical when compiled
  again (in the other file order too), and every input field is found again in
  config.json or plan.json.
* Mutated service files (``tests.compiler.mutations``: wrong types, deep
  nesting, huge strings, odd Unicode, NUL, bytes that are not UTF-8, duplicate
  keys, anchors, merge keys, tags...) never raise anything: the compiler answers
  with diagnostics, whose rendering holds no raw control character; it never
  hangs (20 s of CPU time per case); and the CLI never leaves a partial output.

The normal suite runs a small, derandomized number of cases (~20 s). ``make fuzz``
(``EXTSVC_FUZZ=nightly``) runs over 100,000, randomized; a failing case that
hypothesis finds becomes a regular test (a ``bad_inputs/`` case or one in
``test_hostile_input.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extsvc.cli import cli
from extsvc.compiler import pipeline, render
from extsvc.compiler.check import check_sources
from extsvc.compiler.format.plan import NETWORK_CHECKS, creatable_mount_source
from extsvc.compiler.pipeline import CompileOptions
from extsvc.compiler.sources import SourceFile
from tests.compiler.mutations import mutated_file, seed_files

NIGHTLY = os.environ.get("EXTSVC_FUZZ") == "nightly"
# EXTSVC_FUZZ_EXAMPLES=N: N cases per test, randomized (a quick look between nightlies).
EXAMPLES = int(os.environ.get("EXTSVC_FUZZ_EXAMPLES", "0"))
SEEDS = seed_files()
OPTIONS = CompileOptions(rootfs_base="/usr/local/lib/containers", arch="amd64")
DEFAULT_MOUNTS = 9  # containerd's 7, then /etc/hosts and /etc/resolv.conf
# What must never reach a terminal raw (tab only on source lines).
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")


def fuzz_settings(normal: int, nightly: int) -> settings:
    return settings(
        max_examples=EXAMPLES or (nightly if NIGHTLY else normal),
        derandomize=not (NIGHTLY or EXAMPLES),
        deadline=None,  # no timing assertions; hang_guard below catches a hang
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextlib.contextmanager
def hang_guard(cpu_seconds: int = 20, wall_seconds: int = 600) -> Iterator[None]:
    """Fail a case that does not finish (a hang), instead of blocking the run.

    The budget is CPU time (ITIMER_PROF), not the clock: a loop that never ends spends
    it whatever the host does, and a case is not failed for the host being busy. A
    20 s alarm did that once: a nightly run at nice 10 on a host with load average
    18-20 (this process got 25-40% of a CPU; cases took ~21 ms of CPU and ~80 ms of
    clock on average) failed one case at 20 s, which hypothesis then ran again in
    time and called flaky. A case blocked without spending CPU meets the alarm.
    """

    def expired(signum: int, _frame: object) -> None:
        spent = f"{cpu_seconds} s of CPU" if signum == signal.SIGPROF else f"{wall_seconds} s"
        raise TimeoutError(f"no answer after {spent}: the compiler hangs on this input")

    previous = {
        number: signal.signal(number, expired) for number in (signal.SIGPROF, signal.SIGALRM)
    }
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    signal.alarm(wall_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.alarm(0)
        for number, handler in previous.items():
            signal.signal(number, handler)


# --- Valid services --------------------------------------------------------------------------

# Text the compiler must keep verbatim: no NUL (no C string holds one), no lone
# surrogate, nothing YAML cannot carry even as an escape.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"))
# Names and paths: no control character either.
CLEAN = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff/")
SEGMENT = st.text(CLEAN, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
ABSOLUTE = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
CREATABLE = st.tuples(st.sampled_from(["/var", "/run"]), ABSOLUTE).map("".join)
WORD = st.text(CLEAN, min_size=1, max_size=12)
ENTRYPOINT = st.one_of(ABSOLUTE, WORD, WORD.map(lambda word: "./" + word))
ENV_KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
NAME = st.from_regex(r"[-_a-z0-9]{1,20}", fullmatch=True)


@st.composite
def mounts(draw: st.DrawFn) -> dict[str, Any]:
    mount: dict[str, Any] = {"destination": draw(ABSOLUTE)}
    if draw(st.booleans()):
        mount["source"] = draw(st.one_of(ABSOLUTE, CREATABLE, st.sampled_from(["tmpfs", "shm"])))
    if draw(st.booleans()):
        mount["type"] = draw(st.one_of(st.sampled_from(["bind", "tmpfs", "sysfs"]), WORD))
    if draw(st.booleans()):
        mount["options"] = draw(st.lists(WORD, max_size=4))
    return mount


@st.composite
def services(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One to three services; each may depend on the ones before it (no cycles)."""
    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    result = []
    for index, name in enumerate(names):
        container: dict[str, Any] = {"entrypoint": draw(ENTRYPOINT)}
        optional = {
            "args": st.lists(TEXT, max_size=4),
            "environment": st.lists(st.tuples(ENV_KEY, TEXT).map("=".join) | ENV_KEY, max_size=4),
            "mounts": st.lists(mounts(), max_size=3),
        }
        for key, strategy in optional.items():
            if draw(st.booleans()):
                container[key] = draw(strategy)
        if draw(st.booleans()):
            container["security"] = draw(security())
        service: dict[str, Any] = {
            "name": name,
            "container": container,
            "restart": draw(st.sampled_from(["always", "never", "untilSuccess"])),
        }
        if draw(st.booleans()):
            service["logToConsole"] = draw(st.booleans())
        depends = draw(dependencies(names[:index]))
        if depends:
            service["depends"] = depends
        result.append(service)
    return result


@st.composite
def security(draw: st.DrawFn) -> dict[str, Any]:
    choices: dict[str, st.SearchStrategy[Any]] = {
        "maskedPaths": st.lists(ABSOLUTE, max_size=3),
        "readonlyPaths": st.lists(ABSOLUTE, max_size=3),
        "writeableRootfs": st.booleans(),
        "writeableSysfs": st.booleans(),
        "rootfsPropagation": st.sampled_from(["private", "rprivate", "shared", "rslave"]),
    }
    return {key: draw(value) for key, value in choices.items() if draw(st.booleans())}


@st.composite
def dependencies(draw: st.DrawFn, earlier: list[str]) -> list[dict[str, Any]]:
    kinds: list[st.SearchStrategy[dict[str, Any]]] = [
        ABSOLUTE.map(lambda path: {"path": path}),
        st.lists(st.sampled_from(NETWORK_CHECKS), min_size=1, max_size=4).map(
            lambda checks: {"network": checks}
        ),
        st.just({"time": True}),
        st.just({"configuration": True}),
    ]
    if earlier:
        kinds.append(st.sampled_from(earlier).map(lambda name: {"service": f"ext-{name}"}))
    return draw(st.lists(st.one_of(kinds), max_size=4))


RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\ufeff]")


def as_yaml(tree: dict[str, Any], style: int) -> bytes:
    """The tree as a YAML file, in one of three spellings (all strings quoted, so no
    implicit typing can change a value)."""
    if style in (0, 1):
        # Not ensure_ascii: YAML has no surrogate-pair escapes (JSON's \ud83d\ude00).
        # JSON leaves DEL, C1 controls and the Unicode line breaks raw; YAML refuses
        # them raw or reads them as line breaks, but takes them as \u escapes.
        text = json.dumps(tree, indent=2 if style == 0 else None, ensure_ascii=False)
        return RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()
    text = yaml.safe_dump(tree, default_style='"', allow_unicode=True, sort_keys=False)
    return text.encode()


def sources_of(trees: list[dict[str, Any]], style: int) -> list[SourceFile]:
    return [SourceFile(f"{tree['name']}.yaml", as_yaml(tree, style)) for tree in trees]


def expected_mount(mount: dict[str, Any], writeable_sysfs: bool) -> dict[str, Any]:
    if mount.get("options") == []:  # empty options are no options (Go's omitempty)
        mount = {key: value for key, value in mount.items() if key != "options"}
    if writeable_sysfs and mount.get("type") == "sysfs" and "options" in mount:
        return {**mount, "options": ["rw" if o == "ro" else o for o in mount["options"]]}
    return mount


def check_round_trip(tree: dict[str, Any], config: dict[str, Any], plan: dict[str, Any]) -> None:
    container = tree["container"]
    security_ = container.get("security", {})
    assert config["process"]["args"] == [container["entrypoint"], *container.get("args", [])]
    environment = [entry for entry in container.get("environment", []) if "=" in entry]
    assert config["process"].get("env", []) == environment
    assert ("env" in config["process"]) == bool(environment)
    own = config["mounts"][DEFAULT_MOUNTS : DEFAULT_MOUNTS + len(container.get("mounts", []))]
    sysfs = security_.get("writeableSysfs", False)
    assert own == [expected_mount(m, sysfs) for m in container.get("mounts", [])]
    assert config["root"]["path"] == f"/usr/local/lib/containers/{tree['name']}"
    assert config["root"].get("readonly") is (None if security_.get("writeableRootfs") else True)
    for key in ("maskedPaths", "readonlyPaths"):
        if key in security_:
            assert config["linux"].get(key, []) == security_[key]
    assert config["linux"].get("rootfsPropagation") == security_.get("rootfsPropagation")

    entry = plan["services"][f"ext-{tree['name']}"]
    assert entry["restart"] == tree["restart"]
    assert entry["logToConsole"] == tree.get("logToConsole", False)
    depends = tree.get("depends", [])
    paths = [d["path"] for d in depends if "path" in d]
    assert entry["depends"]["paths"] == list(dict.fromkeys(paths))
    network = {check for d in depends for check in d.get("network", [])}
    assert entry["depends"]["network"] == [c for c in NETWORK_CHECKS if c in network]
    assert entry["depends"]["time"] == any("time" in d for d in depends)
    assert entry["depends"]["configuration"] == any("configuration" in d for d in depends)
    services_ = [d["service"] for d in depends if "service" in d]
    assert entry["depends"]["services"] == list(dict.fromkeys(services_))
    sources = [m.get("source", "") for m in container.get("mounts", [])]
    assert entry["mountSources"] == list(
        dict.fromkeys(s for s in sources if creatable_mount_source(s))
    )


@fuzz_settings(normal=40, nightly=5_000)
@given(services(), st.integers(0, 2))
def test_valid_services_compile_to_schema_valid_stable_output(
    trees: list[dict[str, Any]], style: int
) -> None:
    with hang_guard():
        result = pipeline.compile(sources_of(trees, style), OPTIONS)
        again = pipeline.compile(sources_of(trees[::-1], style), OPTIONS)

    assert result.ok, "\n".join(d.render() for d in result.diagnostics)
    assert again.files == result.files  # byte-identical, whatever the file order
    plan = json.loads(result.files["plan.json"])
    for tree in trees:
        config = json.loads(result.files[f"bundles/{tree['name']}/config.json"])
        assert list(render.oci_config_errors(config)) == []
        check_round_trip(tree, config, plan)


# --- Mutated files ---------------------------------------------------------------------------


def rendered(diagnostics: Any) -> str:
    return "\n".join(d.render() for d in diagnostics)


@fuzz_settings(normal=120, nightly=100_000)
@given(st.randoms(use_true_random=False))
def test_mutated_files_get_diagnostics_never_an_exception(rng: random.Random) -> None:
    data = mutated_file(rng, SEEDS)
    with hang_guard():
        checked = check_sources([SourceFile("fuzz.yaml", data)])
        result = pipeline.compile([SourceFile("fuzz.yaml", data)], OPTIONS)

    assert result.diagnostics == checked.diagnostics
    assert (result.files != {}) == result.ok
    text = rendered(checked.diagnostics)
    assert not UNSAFE.search(text.replace("\n", "").replace("\t", ""))
    for diagnostic in checked.diagnostics:
        assert diagnostic.render().count("\n") <= 3  # headline, source, caret, hint


@fuzz_settings(normal=15, nightly=2_000)
@given(rng=st.randoms(use_true_random=False))
def test_the_cli_never_leaves_a_partial_output(rng: random.Random, tmp_path_factory: Any) -> None:
    work: Path = tmp_path_factory.mktemp("fuzz")
    (work / "in.yaml").write_bytes(mutated_file(rng, SEEDS))
    out = work / "out"
    (out / "bundles" / "old").mkdir(parents=True)
    (out / "plan.json").write_bytes(b'{"previous": true}\n')
    (out / "bundles" / "old" / "config.json").write_bytes(b"{}\n")

    with hang_guard(), contextlib.chdir(work):
        run = CliRunner().invoke(
            cli, ["compile", "in.yaml", "-o", "out", "--arch", "amd64"], catch_exceptions=False
        )

    assert run.exit_code in (0, 1), run.output
    assert "Traceback" not in run.stderr
    assert not UNSAFE.search(run.stderr.replace("\n", "").replace("\t", ""))
    assert sorted(p.name for p in work.iterdir()) == ["in.yaml", "out"]  # no temporary tree
    if run.exit_code == 1:
        assert (out / "plan.json").read_bytes() == b'{"previous": true}\n'
        assert (out / "bundles" / "old" / "config.json").read_bytes() == b"{}\n"
    else:
        assert json.loads((out / "plan.json").read_bytes())["kind"] == "Plan"


# --- The guard itself ------------------------------------------------------------------------


def test_the_hang_guard_stops_a_loop_by_its_cpu_time_and_a_blocked_case_by_the_clock() -> None:
    import time

    with pytest.raises(TimeoutError, match="after 1 s of CPU"), hang_guard(cpu_seconds=1):
        while True:
            pass
    with pytest.raises(TimeoutError, match="after 1 s:"), hang_guard(wall_seconds=1):
        time.sleep(30)  # no CPU spent: only the clock sees it
