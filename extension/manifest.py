"""``manifest.yaml`` of an extension image -> ``Manifest``, or located diagnostics (pure).

Talos reads it with a plain YAML decoder (``pkg/machinery/extensions``): ``version`` must
be ``v1alpha1``; ``metadata`` holds name, version, author, description, an optional
``compatibility.talos.version`` constraint and ``extraInfo``. Talos itself requires only
the version; extsvc also requires name, version, author and description (every image of
the extensions catalogue has them, and ``list`` shows them), and a name that can be a
file name (the install record is ``<name>.json``). Unknown keys are ignored, as Talos does.

The compatibility constraint is recorded and shown; it is enforced only when a Talos
version is given (``--talos-version``), the way Talos checks it (``validateConstraints``:
blang/semver ranges, a ``v`` before a number dropped, the Talos version cut to its core).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from extsvc.compiler.format.diagnostics import Diagnostic, Severity
from extsvc.compiler.format.load import iter_documents
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap

MANIFEST_FILE = "manifest.yaml"
MANIFEST_VERSION = "v1alpha1"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][-_.A-Za-z0-9]{0,127}$")
_REQUIRED = ("name", "version", "author", "description")


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    author: str
    description: str
    # The Talos version constraint as written ("" when there is none).
    compatibility: str = ""
    extra_info: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "author": self.author,
            "description": self.description,
            "compatibility": self.compatibility,
            "extraInfo": self.extra_info,
        }


def parse_manifest(file: str, data: bytes) -> tuple[Manifest | None, list[Diagnostic]]:
    """The manifest of one image; ``file`` names it in diagnostics (``SOURCE:manifest.yaml``)."""
    first = next(iter(iter_documents(file, data)), None)
    if first is None:
        return None, [_whole_file(file, "manifest.yaml is empty")]
    document, problems = first
    if document is None or problems:
        return None, problems
    tree, where = document.tree, document.source_map
    if not isinstance(tree, dict):
        return None, [where.diagnostic((), "manifest.yaml must be a mapping")]
    errors: list[Diagnostic] = []
    version = tree.get("version")
    if version != MANIFEST_VERSION:
        shown = "missing" if version is None else f"{str(version)[:40]!r}"
        errors.append(
            where.diagnostic(
                ("version",),
                f"unsupported manifest version ({shown}): Talos reads only {MANIFEST_VERSION!r}",
                at_key=version is None,
            )
        )
    metadata = tree.get("metadata")
    if not isinstance(metadata, dict):
        errors.append(where.diagnostic(("metadata",), "metadata must be a mapping"))
        return None, errors
    values = {key: _string(where, ("metadata", key), metadata, errors) for key in _REQUIRED}
    name = values["name"]
    if name and not NAME_PATTERN.match(name):
        errors.append(
            where.diagnostic(
                ("metadata", "name"),
                "an extension name is letters, digits, '-', '_' and '.', at most 128, "
                "and starts with a letter or a digit",
            )
        )
    compatibility = _compatibility(where, metadata, errors)
    extra = metadata.get("extraInfo", "")
    if errors:
        return None, errors
    return Manifest(
        name=name,
        version=values["version"],
        author=values["author"],
        description=values["description"],
        compatibility=compatibility,
        extra_info=extra if isinstance(extra, str) else str(extra),
    ), []


def _whole_file(file: str, message: str) -> Diagnostic:
    from extsvc.compiler.format.diagnostics import Position

    return Diagnostic(file=file, position=Position(1, 1), severity=Severity.ERROR, message=message)


def _string(
    where: SourceMap, path: FieldPath, parent: dict[str, object], errors: list[Diagnostic]
) -> str:
    value = parent.get(str(path[-1]))
    if value is None or value == "":
        errors.append(where.diagnostic(path[:-1], f"metadata.{path[-1]} is required"))
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        errors.append(where.diagnostic(path, "must be a string"))
        return ""
    return str(value)


def _compatibility(where: SourceMap, metadata: dict[str, object], errors: list[Diagnostic]) -> str:
    compatibility = metadata.get("compatibility")
    if compatibility is None:
        return ""
    talos = compatibility.get("talos") if isinstance(compatibility, dict) else None
    if not isinstance(compatibility, dict) or not isinstance(talos, dict | None):
        errors.append(
            where.diagnostic(("metadata", "compatibility"), "must be {talos: {version: RANGE}}")
        )
        return ""
    constraint = (talos or {}).get("version", "")
    if not isinstance(constraint, str):
        errors.append(
            where.diagnostic(("metadata", "compatibility", "talos", "version"), "must be a string")
        )
        return ""
    if constraint and parse_range(constraint) is None:
        errors.append(
            where.diagnostic(
                ("metadata", "compatibility", "talos", "version"),
                f"cannot read the version constraint {constraint[:60]!r} "
                "(a range such as '>= v1.5.0' or '>= v1.5.0 < v1.7.0')",
            )
        )
    return constraint


# -- Talos version constraints (blang/semver ranges) ---------------------------------------

Version = tuple[int, int, int, tuple[str, ...]]
_COMPARATOR = re.compile(
    r"(>=|<=|!=|==|=|>|<)?\s*v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
Comparator = tuple[str, Version]


def parse_version(text: str) -> Version | None:
    """``v1.9.2`` (or ``1.9.2-beta.0``) -> a comparable version, or None."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), tuple((pre or "").split(".")) if pre else ())


def parse_range(text: str) -> list[list[Comparator]] | None:
    """``>= v1.5.0 < v1.7.0 || = v2.0.0`` -> alternatives of comparators, or None."""
    alternatives: list[list[Comparator]] = []
    for alternative in text.split("||"):
        # "> = 1.0.0" is not a thing, but ">= 1.0.0" is: join an operator to its version.
        words = re.sub(r"(>=|<=|!=|==|=|>|<)\s+", r"\1", alternative.strip()).split()
        if not words:
            return None
        comparators: list[Comparator] = []
        for word in words:
            match = _COMPARATOR.match(word)
            if match is None:
                return None
            operator, major, minor, patch, pre = match.groups()
            version = (int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else ())
            comparators.append((operator or "=", version))
        alternatives.append(comparators)
    return alternatives


def _order(version: Version) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    major, minor, patch, pre = version
    # semver: a pre-release sorts before its release; numeric identifiers before others.
    identifiers = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre)
    return (major, minor, patch, 0 if pre else 1, identifiers)


_OPERATORS = {
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def satisfies(constraint: str, talos_version: Version) -> bool | None:
    """Whether Talos ``talos_version`` (cut to its core, as Talos does) meets ``constraint``;
    None when the constraint cannot be read. An empty constraint is met by every version."""
    if not constraint.strip():
        return True
    alternatives = parse_range(constraint)
    if alternatives is None:
        return None
    core = _order((*talos_version[:3], ()))
    return any(
        all(_OPERATORS[op](core, _order(version)) for op, version in comparators)
        for comparators in alternatives
    )
