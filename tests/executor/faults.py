"""A runtime that misbehaves on demand, for fault-injection tests with real runc.

``FaultyRuntime(tmp).path`` is a shell script passed as ``extsvc run --runtime``:
it runs the real runc unless a file in its directory names the runc subcommand
(``create``, ``start``, ``delete``, ``list``, ``exec``): in ``hang`` it forks a
``sleep`` (its PID in ``hung.pids``) and waits for it, as a hung runc would; in
``fail`` it prints a reason and exits 1. The files can change while the daemon runs.

For kill points (an executor SIGKILLed at a known moment of a start): ``pause(sub)``
makes the script write its PID to ``<sub>.paused`` and wait, before running runc,
until ``release(sub)``; ``mark_return(sub)`` makes it run runc, then write
``<sub>.returned`` before it exits.

``slow_exec_pid_file(s)`` makes `runc exec` name the process it started (its
``--pid-file``) only ``s`` seconds after starting it.

Whatever it does, it first notes when the executor spawned it (a line
``<subcommand> <start time>`` in ``calls``: the kernel's own record, in clock ticks
since boot, so a loaded host cannot make it late), and in ``term`` it sends the
executor a SIGTERM first.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.executor.realrunc import alive

SCRIPT = """#!/bin/sh
dir=$(dirname "$0")
sub=$3
echo "$sub $(cut -d' ' -f22 /proc/$$/stat)" >> "$dir/calls"
if grep -qx "$sub" "$dir/term" 2>/dev/null; then
    kill -TERM $PPID
fi
if [ "$sub" = exec ] && [ -e "$dir/slow-exec-pid-file" ]; then
    root=$2; file=$5; shift 5
    {runc} --root "$root" exec --pid-file "$file.slow" "$@" &
    child=$!
    while [ ! -e "$file.slow" ] && kill -0 $child 2>/dev/null; do sleep 0.02; done
    sleep "$(cat "$dir/slow-exec-pid-file")"
    [ -e "$file.slow" ] && mv "$file.slow" "$file"
    wait $child
    exit $?
fi
if [ -e "$dir/pause-$sub" ]; then
    echo $$ > "$dir/$sub.paused.tmp" && mv "$dir/$sub.paused.tmp" "$dir/$sub.paused"
    while [ -e "$dir/pause-$sub" ]; do sleep 0.05; done
fi
if [ -e "$dir/mark-return-$sub" ]; then
    {runc} "$@"
    code=$?
    touch "$dir/$sub.returned"
    exit $code
fi
if grep -qx "$sub" "$dir/hang" 2>/dev/null; then
    sleep 3600 &
    echo $! >> "$dir/hung.pids"
    wait $!
fi
if grep -qx "$sub" "$dir/fail" 2>/dev/null; then
    echo "fake runtime: $sub refused" >&2
    exit 1
fi
exec {runc} "$@"
"""


class FaultyRuntime:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "faulty-runtime"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "runc"
        runc = shutil.which("runc")
        assert runc is not None
        self.path.write_text(SCRIPT.format(runc=runc))
        self.path.chmod(0o755)

    def hang(self, *subcommands: str) -> FaultyRuntime:
        (self.dir / "hang").write_text("".join(f"{s}\n" for s in subcommands))
        return self

    def fail(self, *subcommands: str) -> FaultyRuntime:
        (self.dir / "fail").write_text("".join(f"{s}\n" for s in subcommands))
        return self

    def pause(self, subcommand: str) -> FaultyRuntime:
        (self.dir / f"pause-{subcommand}").touch()
        return self

    def release(self, subcommand: str) -> None:
        (self.dir / f"pause-{subcommand}").unlink(missing_ok=True)

    def paused_pid(self, subcommand: str) -> int | None:
        """The PID of the script paused before ``runc subcommand`` (once it got there)."""
        try:
            return int((self.dir / f"{subcommand}.paused").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def mark_return(self, subcommand: str) -> FaultyRuntime:
        (self.dir / f"mark-return-{subcommand}").touch()
        return self

    def returned(self, subcommand: str) -> bool:
        return (self.dir / f"{subcommand}.returned").exists()

    def slow_exec_pid_file(self, seconds: float) -> FaultyRuntime:
        """`runc exec --pid-file F`: F written ``seconds`` after the process started (runc
        on a loaded host), whatever the caller's timeout."""
        (self.dir / "slow-exec-pid-file").write_text(f"{seconds}\n")
        return self

    def term(self, *subcommands: str) -> FaultyRuntime:
        (self.dir / "term").write_text("".join(f"{s}\n" for s in subcommands))
        return self

    def calls(self) -> list[tuple[str, float]]:
        """Each runtime call so far: (subcommand, when the executor spawned it, as
        time.time())."""
        try:
            lines = (self.dir / "calls").read_text().splitlines()
        except FileNotFoundError:
            return []
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        ticks = os.sysconf("SC_CLK_TCK")
        return [(ln.split()[0], boot + int(ln.split()[1]) / ticks) for ln in lines if ln.split()]

    def hung_processes(self) -> list[int]:
        """The hung runtime processes that are still alive (none once the executor killed them)."""
        try:
            pids = [int(p) for p in (self.dir / "hung.pids").read_text().split()]
        except FileNotFoundError:
            return []
        return [pid for pid in pids if alive(pid)]

    def hangs_seen(self) -> int:
        try:
            return len((self.dir / "hung.pids").read_text().split())
        except FileNotFoundError:
            return 0
