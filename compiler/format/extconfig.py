"""ExtensionServiceConfig documents (docs/configuration.md): checked, applied to a service's spec.

Shared by the compiler (``extsvc compile --service-config``: the files go into the
bundle) and the executor (``extsvc run --config-dir``: the files go under the state
dir), so both build exactly the same spec. A document::

    apiVersion: v1alpha1
    kind: ExtensionServiceConfig
    name: hello-world            # the service's name, without ext-
    configFiles:
      - content: "key = value\\n"
        mountPath: /etc/hello/config.ini
    environment:
      - GREETING=hi

File contents and environment values are secrets: no diagnostic, event or log
line carries them (keys and mount paths only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from extsvc.compiler.format.diagnostics import Diagnostic, Severity, sort_key
from extsvc.compiler.format.enventries import DROPPED, is_dropped, kept

if TYPE_CHECKING:
    # The YAML loader and schema checks are imported where documents are read, so a
    # service started without any document (`extsvc run`'s boot path) never loads them.
    from extsvc.compiler.format.load import DocumentResult, LoadedDocument
    from extsvc.compiler.format.sourcemap import SourceMap

KIND = "ExtensionServiceConfig"


@dataclass(frozen=True)
class ConfigFile:
    content: str
    mount_path: str


@dataclass(frozen=True)
class ServiceConfig:
    """One valid document: what it adds to the service ``name``."""

    name: str
    files: tuple[ConfigFile, ...]
    environment: tuple[str, ...]
    # Where it came from (diagnostics about the set, e.g. two documents for one service).
    source_map: SourceMap = field(compare=False, repr=False)


def source_name(mount_path: str) -> str:
    """Talos's file name for a config file: the path without its leading '/', '/' -> '-'."""
    return mount_path.lstrip("/").replace("/", "-")


# Compile time: a bundle holds its service's config files in this folder, and its
# config.json names them relative to the bundle (OCI allows a relative bind source).
BUNDLE_CONFIG_DIR = "config"


def bundle_source(config_file: ConfigFile) -> str:
    return f"{BUNDLE_CONFIG_DIR}/{source_name(config_file.mount_path)}"


def is_baked_config_file(relative: str) -> bool:
    """True for ``bundles/<name>/config/<file>``, a path of the compiled output."""
    parts = relative.split("/")
    return len(parts) == 4 and parts[0] == "bundles" and parts[2] == BUNDLE_CONFIG_DIR


def anchor_sources(spec: dict[str, Any], bundle: str) -> dict[str, Any]:
    """The spec with relative mount sources made absolute against the compiled bundle.

    runc reads a relative source against the bundle it is given; the executor runs
    a copy of the spec from its own runtime bundle, so it anchors them first.
    """
    mounts = spec.get("mounts", [])
    if not any(
        isinstance(m.get("source"), str) and m["source"][:1] not in ("/", "") for m in mounts
    ):
        return spec
    anchored = [
        {**m, "source": f"{bundle}/{m['source']}"}
        if m.get("type") == "bind"
        and isinstance(m.get("source"), str)
        and not m["source"].startswith("/")
        else m
        for m in mounts
    ]
    return {**spec, "mounts": anchored}


def check_config(document: LoadedDocument) -> tuple[ServiceConfig | None, list[Diagnostic]]:
    """The document as a ServiceConfig (None when it has an error), and every problem."""
    from extsvc.compiler.format.schemadiag import check_document

    tree, problems = check_document("config", document)
    source_map = document.source_map
    if tree is not None:
        problems.extend(_semantic_problems(tree, source_map))
    problems = [_without_secrets(d, document) for d in problems]
    problems.sort(key=sort_key)
    if tree is None or any(d.is_error for d in problems):
        return None, problems
    files = tuple(ConfigFile(f["content"], f["mountPath"]) for f in tree.get("configFiles", []))
    config = ServiceConfig(tree["name"], files, tuple(tree.get("environment", [])), source_map)
    return config, problems


def _semantic_problems(tree: dict[str, Any], source_map: SourceMap) -> list[Diagnostic]:
    """Ours on top of Talos's: one file per mountPath; KEY=VALUE entries."""
    problems: list[Diagnostic] = []
    first_at: dict[str, int] = {}
    files = tree.get("configFiles")
    for index, config_file in enumerate(files if isinstance(files, list) else []):
        mount_path = config_file.get("mountPath") if isinstance(config_file, dict) else None
        if not isinstance(mount_path, str):
            continue
        if mount_path in first_at:
            earlier = source_map.value_position(("configFiles", first_at[mount_path], "mountPath"))
            problems.append(
                source_map.diagnostic(
                    ("configFiles", index, "mountPath"),
                    f"a second file for {mount_path} (the first is at line {earlier.line})",
                    hint="one mountPath holds one file: merge the two contents",
                )
            )
        else:
            first_at[mount_path] = index
    environment = tree.get("environment")
    for index, entry in enumerate(environment if isinstance(environment, list) else []):
        if isinstance(entry, str) and is_dropped(entry):
            # The entry has no value to hide: it is only a name.
            problems.append(
                source_map.diagnostic(
                    ("environment", index),
                    f"{entry!r} is not KEY=VALUE: {DROPPED}",
                    severity=Severity.WARNING,
                    hint="write it as KEY=VALUE",
                )
            )
    return problems


def _secret_lines(document: LoadedDocument) -> set[int]:
    """Lines of the file that hold a file's content or an environment value."""
    source_map = document.source_map
    tree = document.tree if isinstance(document.tree, dict) else {}
    starts = sorted({p.line for p in (*source_map.keys.values(), *source_map.values.values())})
    secret: set[int] = set()

    def cover(path: tuple[str | int, ...]) -> None:
        # A value runs from its first line to the line before the next thing that
        # starts after it (a block scalar's content has no position of its own).
        first = source_map.value_position(path).line
        later = [line for line in starts if line > first]
        last = later[0] - 1 if later else len(source_map.lines)
        secret.update(range(first, last + 1))

    files = tree.get("configFiles")
    for index, config_file in enumerate(files if isinstance(files, list) else []):
        if isinstance(config_file, dict) and "content" in config_file:
            cover(("configFiles", index, "content"))
    environment = tree.get("environment")
    for index, _ in enumerate(environment if isinstance(environment, list) else []):
        cover(("environment", index))
    return secret


def _without_secrets(diagnostic: Diagnostic, document: LoadedDocument) -> Diagnostic:
    """The diagnostic without its source line when that line holds a secret."""
    if diagnostic.source_line is None or diagnostic.position.line not in _secret_lines(document):
        return diagnostic
    from dataclasses import replace

    return replace(diagnostic, source_line=None)


def iter_config_documents(
    file: str, data: bytes
) -> Iterator[tuple[str | None, ServiceConfig | None, list[Diagnostic]]]:
    """Each ExtensionServiceConfig document of one file: the service it names (when it
    names one), the document when valid, and its problems.

    Documents of another ``kind`` (a machine config holds many) are not ours and
    are skipped; a document without a kind, or that is not a mapping, is checked
    (and so reported) as a config document.
    """
    from extsvc.compiler.format.load import iter_documents

    return config_documents(iter_documents(file, data))


def config_documents(
    documents: Iterable[DocumentResult],
) -> Iterator[tuple[str | None, ServiceConfig | None, list[Diagnostic]]]:
    """``iter_config_documents`` of a file's documents already loaded (``iter_documents``)."""
    for document, load_problems in documents:
        if document is None or load_problems:
            yield None, None, load_problems
            continue
        tree = document.tree
        if tree is None or (isinstance(tree, dict) and "kind" in tree and tree["kind"] != KIND):
            continue
        config, problems = check_config(document)
        name = tree.get("name") if isinstance(tree, dict) else None
        yield (name if isinstance(name, str) else None), config, problems


def load_configs(
    documents: Iterable[DocumentResult],
) -> tuple[list[ServiceConfig], list[Diagnostic]]:
    """The valid ExtensionServiceConfig documents of one file (its ``iter_documents``),
    and every problem."""
    configs: list[ServiceConfig] = []
    problems: list[Diagnostic] = []
    for _, config, found in config_documents(documents):
        problems.extend(found)
        if config is not None:
            configs.append(config)
    return configs, problems


def duplicate_problems(configs: Sequence[ServiceConfig]) -> list[tuple[str, Diagnostic]]:
    """Two documents for one service: Talos refuses the machine config. Each problem
    (with the service it is about) is at the second document and names the first."""
    first: dict[str, ServiceConfig] = {}
    problems: list[tuple[str, Diagnostic]] = []
    for config in configs:
        earlier = first.setdefault(config.name, config)
        if earlier is config:
            continue
        where = earlier.source_map.value_position(("name",))
        diagnostic = config.source_map.diagnostic(
            ("name",),
            f"a second ExtensionServiceConfig for '{config.name}' "
            f"(the first is {earlier.source_map.file}:{where.line}:{where.col})",
            hint="Talos refuses two documents with one name: merge them",
        )
        problems.append((config.name, diagnostic))
    return problems


def configure_spec(
    spec: dict[str, Any],
    *,
    env_file: Sequence[str] = (),
    config: ServiceConfig | None = None,
    source_for: Callable[[ConfigFile], str] = lambda f: source_name(f.mount_path),
) -> dict[str, Any]:
    """A new spec: the environment file's variables first, then the spec's own
    environment, then the document's; the document's files as read-only binds after
    the spec's mounts, in the document's order. Entries without '=' are dropped (as
    Talos does); no ``env`` key at all when the list is empty. ``spec`` is unchanged.
    """
    result = dict(spec)
    process = dict(spec.get("process", {}))
    extra = kept(config.environment) if config else []
    environment = [*env_file, *process.get("env", []), *extra]
    if environment:
        process["env"] = environment
    if "process" in spec or environment:
        result["process"] = process
    if config is not None and config.files:
        result["mounts"] = [
            *spec.get("mounts", []),
            *(
                {
                    "destination": f.mount_path,
                    "options": ["ro", "bind"],
                    "source": source_for(f),
                    "type": "bind",
                }
                for f in config.files
            ),
        ]
    return result
