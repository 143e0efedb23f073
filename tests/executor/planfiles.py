"""Hand-built plan.json + bundles for tests that must not depend on the compiler's output."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

HELLO_CONFIG = (
    Path(__file__).resolve().parents[3] / "shared" / "examples" / "hello-world.config.json"
)


def base_spec() -> dict[str, Any]:
    if HELLO_CONFIG.exists():
        spec: dict[str, Any] = json.loads(HELLO_CONFIG.read_text())
        return spec
    return {
        "ociVersion": "1.3.0",
        "process": {"args": ["./hello"], "cwd": "/"},
        "root": {"path": "/"},
    }


def write_plan(out: Path, services: dict[str, dict[str, Any]], rootfs_base: str = "/srv") -> Path:
    """Write OUT/plan.json and OUT/bundles/<name>/config.json (``services``: name -> overrides)."""
    plan_services = {}
    for name, overrides in services.items():
        spec = copy.deepcopy(base_spec())
        spec["root"]["path"] = f"{rootfs_base}/{name}"
        spec["process"]["args"] = overrides.get("args", ["./hello"])
        spec["linux"] = {**spec.get("linux", {}), "cgroupsPath": f"/system/extensions/{name}"}
        bundle = out / "bundles" / name
        bundle.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode()
        (bundle / "config.json").write_bytes(data)
        plan_services[f"ext-{name}"] = {
            "name": name,
            "source": f"{name}.yaml",
            "bundle": f"bundles/{name}",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "rootfs": f"{rootfs_base}/{name}",
            "restart": overrides.get("restart", "always"),
            "logToConsole": False,
            "level": overrides.get("level", 0),
            "depends": {
                "services": overrides.get("services", []),
                "hostServices": [],
                "paths": [],
                "network": [],
                "time": False,
                "configuration": False,
            },
            "mountSources": [],
        }
    levels: dict[int, list[str]] = {}
    for service_id, entry in plan_services.items():
        levels.setdefault(entry["level"], []).append(service_id)
    plan = {
        "apiVersion": "extsvc/v1",
        "kind": "Plan",
        "compiler": {"name": "extsvc", "version": "test"},
        "arch": "amd64",
        "rootfsBase": rootfs_base,
        "levels": [sorted(levels[level]) for level in sorted(levels)],
        "services": plan_services,
    }
    (out / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    return out
