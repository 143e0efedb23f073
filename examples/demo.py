"""`make demo`: compile examples/, build busybox rootfs dirs, run the executor a few seconds.

Needs root, runc and busybox-static (`make demo` installs them). Everything it
creates lives in a temporary directory and is gone afterwards.
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
RUN_SECONDS = 5

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


def main() -> int:
    if os.geteuid() != 0 or shutil.which("runc") is None or find_static_busybox() is None:
        print(
            "demo: needs root, runc and busybox-static (make demo installs them)", file=sys.stderr
        )
        return 3
    with tempfile.TemporaryDirectory(prefix="extsvc-demo-") as temporary:
        work = Path(temporary)
        out, rootfs_base, state = work / "out", work / "rootfs", work / "state"

        step("extsvc compile examples/")
        compiled = subprocess.run(
            [*EXTSVC, "compile", str(REPO / "examples"), "-o", str(out),
             "--rootfs-base", str(rootfs_base)],
            cwd=REPO,
        )  # fmt: skip
        if compiled.returncode != 0:
            return compiled.returncode
        for name in ("hello-world", "greeter", "setup-once"):
            make_busybox_rootfs(rootfs_base / name)
        hello = rootfs_base / "hello-world" / "hello"
        hello.write_text(HELLO)
        hello.chmod(0o755)
        (rootfs_base / "hello-world" / "config.ini").write_text("greeting = hello\n")
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
            step("extsvc service ext-hello-world")
            extsvc("service", "ext-hello-world", *common)
            step("extsvc logs ext-hello-world --tail 5")
            extsvc("logs", "ext-hello-world", "--tail", "5", *common)
            step("extsvc logs setup-once (a bare name; markers between runs)")
            extsvc("logs", "setup-once", *common)
            step("extsvc logs --tail 6 --timestamps (every service, interleaved by time)")
            extsvc("logs", "--tail", "6", "--timestamps", *common)
            step("stopping (SIGTERM): dependents first")
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
        print(f"\nexecutor exited with {code}")
        return code


if __name__ == "__main__":
    sys.exit(main())
