"""Small builders shared by the compiler's unit tests."""

from __future__ import annotations

from textwrap import dedent

from extsvc.compiler.build import seccomp_profile
from extsvc.compiler.check import check_sources
from extsvc.compiler.model import Service
from extsvc.compiler.oci import BuildContext, build_config
from extsvc.compiler.sources import SourceFile


def sources(**files: str) -> list[SourceFile]:
    """SourceFiles from keyword arguments: name (without .yaml) -> YAML text."""
    return [SourceFile(f"{name}.yaml", dedent(text).encode()) for name, text in files.items()]


def service(text: str) -> Service:
    result = check_sources(sources(svc=text))
    assert result.table is not None, "\n".join(d.render() for d in result.diagnostics)
    (only,) = result.table.services.values()
    return only


def config(text: str, rootfs_base: str = "/usr/local/lib/containers") -> dict:  # type: ignore[type-arg]
    return build_config(service(text), BuildContext(rootfs_base, seccomp_profile("amd64"))).config


MINIMAL = """\
name: svc
container:
  entrypoint: /bin/svc
restart: always
"""
