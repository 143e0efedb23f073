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

Every file is checked as ``extsvc validate`` checks it (the schema
``extsvc schema --kind config`` prints, and the same diagnostics); an invalid
document is not configuration: the operator is told where it is wrong, once, and
the service that waits for it keeps waiting, saying why. When a service starts,
``compiler.format.extconfig.configure_spec`` (the compiler's own function) adds
its environment file's variables, its document's files (written under the state
dir, 0600, named after the mountPath as Talos does) and environment. A document
that changes while its service runs restarts that service: the directory is
watched with inotify (executor.host.inotify), so the change is seen as it is made,
and the supervisor is told through one call, ``Supervisor.configuration_changed``
(``watch`` below says what a change does).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extsvc.compiler.format.extconfig import (
    ConfigFile,
    ServiceConfig,
    anchor_sources,
    configure_spec,
    duplicate_problems,
    iter_config_documents,
    source_name,
)
from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.errors import LaunchError

if TYPE_CHECKING:
    import asyncio

    from extsvc.compiler.format.diagnostics import Diagnostic
    from extsvc.executor.supervise.supervisor import Supervisor

__all__ = ["ConfigDirectory", "source_name"]

# Without inotify (no instance left), the directory is looked at this often instead.
WATCH_INTERVAL = 1.0

# A file's (mtime, size): it is parsed again only when this changes.
Signature = tuple[int, int]
# A problem of a document, and the service that document names (None: no name).
Problem = tuple["str | None", "Diagnostic"]


class ConfigDirectory:
    """The documents of ``--config-dir`` (executor.supervise.supervisor.Configuration)."""

    # The daemon runs watch() for as long as its services run: a change is announced.
    watched = True

    def __init__(
        self,
        directory: Path | None,
        files_dir: Path,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.files_dir = files_dir
        # Told once about each problem of a document (file:line:col: field: message).
        self._on_problem = on_problem
        # Digest of the document each service last started with.
        self._applied: dict[str, str] = {}
        self._parsed: dict[Path, tuple[Signature, list[ServiceConfig], list[Problem]]] = {}
        # Service name -> why its document is not usable (shown while it waits).
        self._refused: dict[str, str] = {}
        self._reported: set[str] = set()

    def documents(self) -> dict[str, ServiceConfig]:
        """Valid ExtensionServiceConfig documents by name (invalid ones are not configuration).

        Conditions ask every second; only files whose mtime or size changed are
        read and parsed again. Two documents naming one service are both refused,
        as Talos refuses such a machine config.
        """
        if self.directory is None or not self.directory.is_dir():
            self._parsed.clear()
            return {}
        present: set[Path] = set()
        configs: list[ServiceConfig] = []
        problems: list[Problem] = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                status = path.stat()
            except OSError:
                continue
            present.add(path)
            signature = (status.st_mtime_ns, status.st_size)
            cached = self._parsed.get(path)
            if cached is None or cached[0] != signature:
                cached = (signature, *self._parse(path))
                self._parsed[path] = cached
            configs.extend(cached[1])
            problems.extend(cached[2])
        for gone in set(self._parsed) - present:
            del self._parsed[gone]
        problems.extend(duplicate_problems(configs))
        by_name = {c.name: c for c in configs}
        self._refused = {}
        for name, problem in problems:
            self._report(problem.headline())
            if name is not None and problem.is_error:
                self._refused.setdefault(name, problem.headline())
        return {name: c for name, c in by_name.items() if name not in self._refused}

    def _parse(self, path: Path) -> tuple[list[ServiceConfig], list[Problem]]:
        try:
            data = path.read_bytes()
        except OSError as error:
            self._report(f"{path}: cannot read: {error.strerror}")
            return [], []
        configs: list[ServiceConfig] = []
        problems: list[Problem] = []
        for name, config, found in iter_config_documents(str(path), data):
            problems.extend((name, problem) for problem in found)
            if config is not None:
                configs.append(config)
        return configs, problems

    def _report(self, message: str) -> None:
        if self._on_problem is not None and message not in self._reported:
            self._reported.add(message)
            self._on_problem(f"ExtensionServiceConfig ignored: {message}")

    def has(self, name: str) -> bool:
        return name in self.documents()

    def problem(self, name: str) -> str | None:
        """Why the document for ``name`` is refused, if there is one and it is."""
        self.documents()
        return self._refused.get(name)

    def apply(self, service: ServicePlan) -> dict[str, Any]:
        """The compiled spec plus what only exists at start: the variables of the
        environment file (read now, at each start) and the service's document."""
        env_file = _read_environment_file(service.depends.environment_file)
        # Files baked in at compile time are named relative to the compiled bundle.
        compiled = anchor_sources(service.spec, str(service.bundle_dir.resolve()))
        config = self.documents().get(service.name)
        if config is None:
            self._applied.pop(service.name, None)
            if not env_file:
                return compiled
            return configure_spec(compiled, env_file=env_file)
        target = self.files_dir / service.name
        try:
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
            sources = {
                f: _write_private(target / source_name(f.mount_path), f) for f in config.files
            }
        except OSError as error:
            raise LaunchError(f"cannot write the configuration files: {error.strerror}") from None
        spec = configure_spec(
            compiled, env_file=env_file, config=config, source_for=sources.__getitem__
        )
        self._applied[service.name] = _digest(config)
        return spec

    def changed_services(self) -> list[str]:
        """Names whose document differs from the one they started with."""
        current = {name: _digest(doc) for name, doc in self.documents().items()}
        return [name for name, digest in self._applied.items() if current.get(name) != digest]

    async def watch(self, supervisor: Supervisor, stop: asyncio.Event) -> None:
        """Tell ``supervisor`` of every change of the documents as it is made (inotify;
        without an inotify instance, a look every WATCH_INTERVAL), until ``stop`` or
        cancelled: the daemon runs it for as long as its services run.

        What a change does: each service that started with a document that is now
        different (changed, refused or gone) is restarted, to take the new one (or
        none); services waiting for a document look again. Nothing else is touched.
        """
        if self.directory is None:
            return
        # Here, not at the top: the start-up path (executor.daemon.startup) applies documents
        # before asyncio is imported, so the first containers are created sooner.
        import asyncio

        from extsvc.executor.host.inotify import DirectoryWatch

        changed = asyncio.Event()
        changed.set()  # a change made before the watch began is seen too
        try:
            watch: DirectoryWatch | None = DirectoryWatch(self.directory, changed.set)
        except OSError as error:
            watch = None
            if self._on_problem is not None:
                self._on_problem(
                    f"cannot watch {self.directory} ({error.strerror}): "
                    f"checking it every {WATCH_INTERVAL:g}s instead"
                )
        seen: object = None
        try:
            while not stop.is_set():
                if watch is None:
                    await asyncio.sleep(WATCH_INTERVAL)
                else:
                    await changed.wait()
                    changed.clear()
                stale = self.changed_services()
                for name in stale:
                    self._applied.pop(name, None)
                # What the services see: the documents and the refusals.
                documents = {name: _digest(doc) for name, doc in self.documents().items()}
                if stale or (documents, self._refused) != seen:
                    seen = (documents, dict(self._refused))
                    supervisor.configuration_changed(stale)
        finally:
            if watch is not None:
                watch.close()


def _write_private(path: Path, config_file: ConfigFile) -> str:
    """Write a config file readable by root only (it may hold secrets)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        os.fchmod(stream.fileno(), 0o600)
        stream.write(config_file.content)
    return str(path)


def _read_environment_file(path: str | None) -> list[str]:
    """The variables of ``environmentFile`` (it exists: the service waited for it)."""
    if path is None:
        return []
    from extsvc.compiler.format.envfile import parse_env_file

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise LaunchError(f"cannot read the environment file {path}: {error.strerror}") from None
    entries, problems = parse_env_file(path, data)
    errors = [p for p in problems if p.is_error]
    if errors:
        raise LaunchError(
            "invalid environment file: " + "; ".join(e.headline() for e in errors[:5])
        )
    return entries


def _digest(config: ServiceConfig) -> str:
    fields = {"name": config.name, "files": [asdict(f) for f in config.files]}
    fields["environment"] = list(config.environment)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
