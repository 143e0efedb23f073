"""A runtime that misbehaves on demand, for fault-injection tests with real runc.

``FaultyRuntime(tmp).path`` is a shell script passed as ``extsvc run --runtime``:
it runs the real runc unless a file in its directory names the runc subcommand
(``create``, ``start``, ``delete``, ``list``, ``exec``): in ``hang`` it forks a
``sleep`` (its PID in ``hung.pids``) and waits for it, as a hung runc would; in
``fail`` it prints a reason and exits 1. The files can change while the daemon runs.

For kill points (an executor SIGKILLed at a known moment of a start): ``pause(sub)``
makes the script write its PID to ``<sub>.paused`` and wait, before running runc,
until ``release(sub)``; ``mark_return(sub)`` makes it run runc, then write
``<sub>.returned`` before it exits. ``hold_in_create()`` holds each `runc create` in
its middle (a createRuntime hook added to the bundle's config.json) until
``release_create()``.

``slow_exec_pid_file(s)`` makes `runc exec` name the process it started (its
``--pid-file``) only ``s`` seconds after starting it.

Whatever it does, it first notes when the executor spawned it (a line
``<subcommand> <start time>`` in ``calls``: the kernel's own record, in clock ticks
since boot, so a loaded host cannot make it late), and in ``term`` it sends the
executor a SIGTERM first; in ``term-after``, right after runc returned.
"""

from __future__ import annotations

import os
import shutil
import sys
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
if [ "$sub" = create ] && [ -e "$dir/hold-create-hook" ]; then
    {python} "$dir/add-hook.py" "$5/config.json" "$dir"
fi
if [ -e "$dir/mark-return-$sub" ] || grep -qx "$sub" "$dir/term-after" 2>/dev/null; then
    {runc} "$@"
    code=$?
    if grep -qx "$sub" "$dir/term-after" 2>/dev/null; then
        kill -TERM $PPID
    fi
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

# Adds a createRuntime hook to a bundle's config.json: runc runs it in the middle of
# `runc create` (the cgroup made, the init waiting, no state.json yet). It starts a
# process in the container's cgroup, in a session of its own as runc's init is, which
# outlives a killed runc as the init may (its PID appended to ``lingering``); then it
# appends its own PID to ``hooked`` and waits until ``hold-create-hook`` is removed.
ADD_HOOK = """import json, sys
config, directory = sys.argv[1], sys.argv[2]
with open(config) as file:
    spec = json.load(file)
cgroup = spec["linux"]["cgroupsPath"]
linger = (
    f'for d in /sys/fs/cgroup/*/{cgroup}; do echo $$ > "$d/cgroup.procs"; done; '
    'echo $$ >> "$0/lingering"; exec sleep 3600'
)
hold = (
    f"setsid sh -c '{linger}' $0 </dev/null >/dev/null 2>&1 & "
    'echo $$ >> "$0/hooked"; while [ -e "$0/hold-create-hook" ]; do sleep 0.05; done'
)
hook = {"path": "/bin/sh", "args": ["sh", "-c", hold, directory], "env": ["PATH=/usr/bin:/bin"]}
spec.setdefault("hooks", {}).setdefault("createRuntime", []).append(hook)
with open(config, "w") as file:
    json.dump(spec, file)
"""


class FaultyRuntime:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "faulty-runtime"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "runc"
        runc = shutil.which("runc")
        assert runc is not None
        self.path.write_text(SCRIPT.format(runc=runc, python=sys.executable))
        self.path.chmod(0o755)
        (self.dir / "add-hook.py").write_text(ADD_HOOK)

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

    def term_after(self, *subcommands: str) -> FaultyRuntime:
        """SIGTERM the executor right after runc returned, before the call exits."""
        (self.dir / "term-after").write_text("".join(f"{s}\n" for s in subcommands))
        return self

    def hold_in_create(self) -> FaultyRuntime:
        """Each `runc create` waits in the middle (a createRuntime hook): its container's
        cgroup made, its init started, runc's state not written yet."""
        (self.dir / "hold-create-hook").touch()
        return self

    def release_create(self) -> None:
        (self.dir / "hold-create-hook").unlink(missing_ok=True)

    def lingering(self) -> list[int]:
        """The PIDs of the processes the held creates left in their cgroups."""
        try:
            return [int(p) for p in (self.dir / "lingering").read_text().split()]
        except FileNotFoundError:
            return []

    def held_in_create(self) -> list[int]:
        """The PIDs of the hooks holding a `runc create` (once each got there)."""
        try:
            return [int(p) for p in (self.dir / "hooked").read_text().split()]
        except FileNotFoundError:
            return []

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


# Short enough for a test, long enough for a real runc on a busy CI machine.
RUNTIME_TIMEOUT = ("--runtime-timeout", "3s")
