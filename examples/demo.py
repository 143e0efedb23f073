"""`make demo`: compile examples/, build busybox rootfs dirs, run the executor a few seconds.

Needs root, runc and busybox-static (`make demo` installs them). Everything it
creates lives in a temporary directory and is gone afterwards.

Each run's services carry a suffix of their own (`hello-world-3fa2c1`): a
service's cgroup, `/system/extensions/<name>`, is the host's, so two demos on one
host (or a demo beside a real `extsvc run`) must not share a name. The demo
checks at the end that none of its cgroups is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.rootfs import find_static_busybox, make_busybox_rootfs  # noqa: E402

EXTSVC = [sys.executable, "-m", "extsvc"]
RUN_SECONDS = float(os.environ.get("EXTSVC_DEMO_SECONDS", "5"))
NAMES = ("hello-world", "greeter", "setup-once")
CGROUPS = Path("/sys/fs/cgroup")

HELLO = """#!/bin/sh
# ./hello --config config.ini: the seed's hello-world service, as a busybox script.
echo "hello-world: started with args: $*"
echo "hello-world: config says: $(cat "$2")"
trap 'echo "hello-world: got SIGTERM, bye"; exit 0' TERM
n=0
while :; do
  n=$((n + 1))
  echo "hello-world: tick $n"
  sleep 1 & wait $!
done
"""


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def extsvc(*args: str) -> None:
    subprocess.run([*EXTSVC, *args], cwd=REPO, check=False)


def copy_examples(into: Path, suffix: str) -> dict[str, str]:
    """examples/*.yaml into ``into``, each service renamed NAME-SUFFIX (and every
    reference to it); the old name -> the new one."""
    renamed = {name: f"{name}-{suffix}" for name in NAMES}
    into.mkdir()
    for source in sorted((REPO / "examples").glob("*.yaml")):
        text = source.read_text()
        for old, new in renamed.items():
            text = text.replace(f"name: {old}\n", f"name: {new}\n")
            text = text.replace(f"ext-{old}\n", f"ext-{new}\n")
        (into / source.name).write_text(text)
    return renamed


def cgroups_left(names: list[str]) -> list[str]:
    """The cgroup directories of ``names`` still on the host (v2, or any v1 hierarchy)."""
    return sorted(
        str(path)
        for name in names
        for pattern in (f"system/extensions/{name}", f"*/system/extensions/{name}")
        for path in CGROUPS.glob(pattern)
        if path.is_dir()
    )


def main() -> int:
    if os.geteuid() != 0 or shutil.which("runc") is None or find_static_busybox() is None:
        print(
            "demo: needs root, runc and busybox-static (make demo installs them)", file=sys.stderr
        )
        return 3
    with tempfile.TemporaryDirectory(prefix="extsvc-demo-") as temporary:
        work = Path(temporary)
        out, rootfs_base, state = work / "out", work / "rootfs", work / "state"
        names = copy_examples(work / "examples", os.urandom(3).hex())
        hello_world, setup_once = names["hello-world"], names["setup-once"]

        step(f"extsvc compile examples/ (services renamed for this run: {hello_world}, ...)")
        compiled = subprocess.run(
            [*EXTSVC, "compile", str(work / "examples"), "-o", str(out),
             "--rootfs-base", str(rootfs_base)],
            cwd=REPO,
        )  # fmt: skip
        if compiled.returncode != 0:
            return compiled.returncode
        for name in names.values():
            make_busybox_rootfs(rootfs_base / name)
        hello = rootfs_base / hello_world / "hello"
        hello.write_text(HELLO)
        hello.chmod(0o755)
        (rootfs_base / hello_world / "config.ini").write_text("greeting = hello\n")
        print(f"built busybox rootfs dirs under {rootfs_base}", flush=True)

        step(f"extsvc run (for {RUN_SECONDS}s; events on stderr, console lines on stdout)")
        common = ["--state-dir", str(state)]
        daemon = subprocess.Popen(
            [*EXTSVC, "run", str(out), *common, "--log-dir", str(work / "logs"),
             "--restart-interval", "1s", "--stop-timeout", "3s"],
            cwd=REPO, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            time.sleep(RUN_SECONDS)
            step("extsvc service")
            extsvc("service", *common)
            step(f"extsvc service ext-{hello_world}")
            extsvc("service", f"ext-{hello_world}", *common)
            step(f"extsvc logs ext-{hello_world} --tail 5")
            extsvc("logs", f"ext-{hello_world}", "--tail", "5", *common)
            step(f"extsvc logs {setup_once} (a bare name; markers between runs)")
            extsvc("logs", setup_once, *common)
            step("extsvc logs --tail 6 --timestamps (every service, interleaved by time)")
            extsvc("logs", "--tail", "6", "--timestamps", *common)
            step("stopping (SIGTERM): dependents first")
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
        print(f"\nexecutor exited with {code}")
        left = cgroups_left(list(names.values()))
        if left:
            print(f"demo: cgroups left behind: {', '.join(left)}", file=sys.stderr)
            return 1
        print("nothing left behind (no cgroup of this run's services)")
        return code


if __name__ == "__main__":
    sys.exit(main())
