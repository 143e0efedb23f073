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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from executor.errors import LaunchError
from executor.plan import ServicePlan

if TYPE_CHECKING:
    from executor.supervisor import Supervisor

KIND = "ExtensionServiceConfig"
WATCH_INTERVAL = 1.0


def source_name(mount_path: str) -> str:
    """Talos's file name for a config file: the path without its leading '/', '/' -> '-'."""
    return mount_path.lstrip("/").replace("/", "-")


class ConfigDirectory:
    def __init__(self, directory: Path | None, files_dir: Path) -> None:
        self.directory = directory
        self.files_dir = files_dir
        # Digest of the document each service last started with.
        self._applied: dict[str, str] = {}

    def documents(self) -> dict[str, dict[str, Any]]:
        """Valid ExtensionServiceConfig documents by name (invalid ones are not configuration)."""
        found: dict[str, dict[str, Any]] = {}
        if self.directory is None or not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
            except (OSError, yaml.YAMLError):
                continue
            for document in documents:
                if _is_valid(document):
                    found[document["name"]] = document
        return found

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
                runner = supervisor.runners.get(f"ext-{name}")
                self._applied.pop(name, None)
                if runner is not None and runner.active:
                    task = asyncio.create_task(runner.restart())
                    restarts.add(task)
                    task.add_done_callback(restarts.discard)


def _is_valid(document: Any) -> bool:
    if not isinstance(document, dict) or document.get("kind") != KIND:
        return False
    if not isinstance(document.get("name"), str):
        return False
    files = document.get("configFiles", [])
    environment = document.get("environment", [])
    if not isinstance(files, list) or not isinstance(environment, list):
        return False
    return all(
        isinstance(f, dict)
        and isinstance(f.get("content"), str)
        and isinstance(f.get("mountPath"), str)
        and f["mountPath"].startswith("/")
        for f in files
    ) and all(isinstance(e, str) for e in environment)


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
