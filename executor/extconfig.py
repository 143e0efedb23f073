"""Run-time ExtensionServiceConfig documents (DESIGN §3), from a directory the executor watches.

``--config-dir DIR`` holds ``*.yaml`` files with documents like::

    apiVersion: v1alpha1
    kind: ExtensionServiceConfig
    name: hello-world
    configFiles:
      - content: "key = value\n"
        mountPath: /etc/hello/config.ini
    environment:
      - GREETING=hi

When a service starts, its document's files are written under the state dir
and bind-mounted read-only at their mountPath (source named after the path, as
Talos does), and its environment is appended after the service's own. A
document that changes while its service runs restarts the service.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extsvc.compiler.format.load import iter_documents, located
from extsvc.compiler.format.plan import ServicePlan, service_id
from extsvc.executor.errors import LaunchError

if TYPE_CHECKING:
    from extsvc.executor.supervisor import Supervisor

KIND = "ExtensionServiceConfig"
WATCH_INTERVAL = 1.0


def source_name(mount_path: str) -> str:
    """Talos's file name for a config file: the path without its leading '/', '/' -> '-'."""
    return mount_path.lstrip("/").replace("/", "-")


# A file's (mtime, size): it is parsed again only when this changes.
Signature = tuple[int, int]


class ConfigDirectory:
    def __init__(
        self,
        directory: Path | None,
        files_dir: Path,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.files_dir = files_dir
        # Told once about each invalid document (file:line:col: message).
        self._on_problem = on_problem
        # Digest of the document each service last started with.
        self._applied: dict[str, str] = {}
        self._parsed: dict[Path, tuple[Signature, list[dict[str, Any]]]] = {}

    def documents(self) -> dict[str, dict[str, Any]]:
        """Valid ExtensionServiceConfig documents by name (invalid ones are not configuration).

        Conditions ask every second; only files whose mtime or size changed are
        read and parsed again.
        """
        found: dict[str, dict[str, Any]] = {}
        if self.directory is None or not self.directory.is_dir():
            self._parsed.clear()
            return found
        present: set[Path] = set()
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                status = path.stat()
            except OSError:
                continue
            present.add(path)
            signature = (status.st_mtime_ns, status.st_size)
            cached = self._parsed.get(path)
            if cached is None or cached[0] != signature:
                cached = (signature, self._parse(path))
                self._parsed[path] = cached
            for document in cached[1]:
                found[document["name"]] = document
        for gone in set(self._parsed) - present:
            del self._parsed[gone]
        return found

    def _parse(self, path: Path) -> list[dict[str, Any]]:
        """The valid documents of one file; each invalid one is reported, located."""
        try:
            data = path.read_bytes()
        except OSError as error:
            self._report(f"{path}: cannot read: {error.strerror}")
            return []
        valid: list[dict[str, Any]] = []
        for document, problems in iter_documents(str(path), data):
            for problem in problems:
                where = f"{problem.file}:{problem.position.line}:{problem.position.col}"
                self._report(f"{where}: {problem.message}")
            if document is None or problems:
                continue
            reason = _invalid_reason(document.tree)
            if reason is None:
                valid.append(document.tree)
            elif document.tree is not None and (
                not isinstance(document.tree, dict) or document.tree.get("kind") == KIND
            ):
                field, message = reason
                self._report(located(document.source_map, field, message))
        return valid

    def _report(self, message: str) -> None:
        if self._on_problem is not None:
            self._on_problem(f"ExtensionServiceConfig ignored: {message}")

    def has(self, name: str) -> bool:
        return name in self.documents()

    def apply(self, service: ServicePlan) -> dict[str, Any]:
        """The compiled spec plus the service's run-time configuration, if any."""
        document = self.documents().get(service.name)
        if document is None:
            self._applied.pop(service.name, None)
            return service.spec
        spec = copy.deepcopy(service.spec)
        target = self.files_dir / service.name
        try:
            target.mkdir(parents=True, exist_ok=True)
            for config_file in document.get("configFiles", []):
                source = target / source_name(config_file["mountPath"])
                source.write_text(config_file["content"])
                spec.setdefault("mounts", []).append(
                    {
                        "destination": config_file["mountPath"],
                        "options": ["ro", "bind"],
                        "source": str(source),
                        "type": "bind",
                    }
                )
        except OSError as error:
            raise LaunchError(f"cannot write the configuration files: {error.strerror}") from None
        environment = [entry for entry in document.get("environment", []) if "=" in entry]
        if environment:
            spec.setdefault("process", {}).setdefault("env", []).extend(environment)
        self._applied[service.name] = _digest(document)
        return spec

    def changed_services(self) -> list[str]:
        """Names whose document differs from the one they started with."""
        current = {name: _digest(doc) for name, doc in self.documents().items()}
        return [name for name, digest in self._applied.items() if current.get(name) != digest]

    async def watch(self, supervisor: Supervisor, stop: asyncio.Event) -> None:
        """Restart a running service whose configuration changed (checked each second)."""
        if self.directory is None:
            return
        restarts: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            await asyncio.sleep(WATCH_INTERVAL)
            for name in self.changed_services():
                runner = supervisor.runners.get(service_id(name))
                self._applied.pop(name, None)
                if runner is not None and runner.active:
                    task = asyncio.create_task(runner.restart())
                    restarts.add(task)
                    task.add_done_callback(restarts.discard)


def _invalid_reason(document: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Why ``document`` is not a usable ExtensionServiceConfig (field, message), or None."""
    if not isinstance(document, dict) or document.get("kind") != KIND:
        return (), f"not a {KIND} document"
    if not isinstance(document.get("name"), str):
        return (), "needs a name"
    files = document.get("configFiles", [])
    environment = document.get("environment", [])
    if not isinstance(files, list):
        return ("configFiles",), "expected a list"
    if not isinstance(environment, list):
        return ("environment",), "expected a list"
    for index, config_file in enumerate(files):
        if not isinstance(config_file, dict) or not isinstance(config_file.get("content"), str):
            return ("configFiles", index), "needs content (a string)"
        mount_path = config_file.get("mountPath")
        if not isinstance(mount_path, str) or not mount_path.startswith("/"):
            return ("configFiles", index), "needs an absolute mountPath"
    for index, entry in enumerate(environment):
        if not isinstance(entry, str):
            return ("environment", index), "expected a string"
    return None


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
