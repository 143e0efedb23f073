"""A service's id in the plan and in every command: its name behind ``ext-``, as Talos
names extension services. Light on purpose (nothing imported): the executor's
control commands resolve ids without loading the plan module and its schema
validator (executor.service.ids)."""

from __future__ import annotations

# A service's id is its name behind this prefix (Talos: "ext-" + name).
EXTENSION_ID_PREFIX = "ext-"


def service_id(name: str) -> str:
    return EXTENSION_ID_PREFIX + name


def service_name(service_id: str) -> str:
    return service_id.removeprefix(EXTENSION_ID_PREFIX)


def is_extension_id(service_id: str) -> bool:
    return service_id.startswith(EXTENSION_ID_PREFIX)
