"""`make demo-real`: a real daemon from Debian's packages, end to end.

Builds chrony's extension image (examples/chrony/build_extension.py, as an OCI
layout), installs it into a scratch root with `extsvc extension install`, compiles
the root's service files, runs them with the executor and asks chronyd through
chronyc, then stops it. Needs root, runc and Debian's mirror (the first time: the
.debs are cached in ~/.cache/extsvc/debs). Everything else lives in a temporary
directory and is gone afterwards, but /var/lib/chrony-demo (chronyd's drift file).
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXTSVC = [sys.executable, "-m", "extsvc"]
NAME = "chrony-demo"
CHRONY_UID = 330
RUN_SECONDS = 6


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def show(*argv: str | Path) -> int:
    print("$ " + " ".join(map(str, argv)), flush=True)
    return subprocess.run([*map(str, argv)], cwd=REPO, check=False).returncode


def main() -> int:
    if os.geteuid() != 0 or shutil.which("runc") is None:
        print("demo-real: needs root and runc (make demo-real installs runc)", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="extsvc-demo-real-") as temporary:
        work = Path(temporary)
        image, layout, root = work / "image", work / "layout", work / "root"
        out, state = work / "out", work / "state"
        root.mkdir()

        step("build chrony's extension image from Debian's packages (no registry)")
        build = [sys.executable, HERE / "build_extension.py", image, "--name", NAME]
        if show(*build, "--layout", layout) != 0:
            return 1
        show("find", layout, "-maxdepth", "1")
        show("cat", image / "manifest.yaml")
        show("cat", image / "rootfs/usr/local/etc/containers" / f"{NAME}.yaml")

        step("install it, list it")
        if show(*EXTSVC, "extension", "install", layout, "--root", root) != 0:
            return 1
        show(*EXTSVC, "extension", "list", "--root", root)

        step("compile the root's service files")
        compiled = show(*EXTSVC, "compile", root / "usr/local/etc/containers", "-o", out,
                        "--rootfs-base", root / "usr/local/lib/containers")  # fmt: skip
        if compiled != 0:
            return compiled

        step(f"extsvc run (for {RUN_SECONDS}s; events on stderr)")
        common = ["--state-dir", str(state)]
        daemon = subprocess.Popen(
            [*EXTSVC, "run", str(out), *common, "--log-dir", str(work / "logs")],
            cwd=REPO, stderr=subprocess.STDOUT,
        )  # fmt: skip
        service_id = f"ext-{NAME}"
        try:
            time.sleep(RUN_SECONDS)
            step("extsvc service")
            show(*EXTSVC, "service", *common)
            step("chronyc tracking, through runc exec as chronyd's user")
            runc = ["runc", "--root", state / "runc", "exec"]
            show(*runc, "--user", f"{CHRONY_UID}:{CHRONY_UID}", service_id,
                 "/usr/bin/chronyc", "-n", "tracking")  # fmt: skip
            step(f"extsvc logs {service_id}")
            show(*EXTSVC, "logs", service_id, *common, "--log-dir", work / "logs")
            step("stopping (SIGTERM)")
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
        print(f"\nexecutor exited with {code}")
        step("chronyd's drift file, saved as its own user in the directory extsvc made for it")
        show("ls", "-ln", f"/var/lib/{NAME}")
        return code


if __name__ == "__main__":
    sys.exit(main())
