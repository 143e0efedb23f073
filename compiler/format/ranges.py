"""How large a number of a service file may be, and why each range ends where it does.

A number past what the runtime takes must be refused at its line like any other bad
value, not reach runc (which fails the start), the OCI schema check (an "extsvc bug")
or ``json.dumps`` (Python refuses an int of more than 4,300 digits). The schemas say
the same bounds as ``maximum`` (``service.schema.json`` for the input, ``plan.schema.json``
for what the executor loads); ``tests/compiler/test_hostile_input.py`` checks that
they agree with these constants.
"""

from __future__ import annotations

# OCI's linux.resources.memory.limit is an int64 of bytes (8 EiB); the kernel clamps
# larger limits to "max", so the whole int64 range is accepted.
MAX_MEMORY_BYTES = 2**63 - 1
# The most CPUs a Linux kernel supports (x86-64's NR_CPUS with MAXSMP). Its quota,
# 819,200,000 us per 100 ms period, is far below what the kernel takes (2**44 - 1 us).
MAX_CPUS = 8192
# The kernel refuses a pids.max of PID_MAX_LIMIT (4,194,304 on 64-bit) + 1 or more:
# EINVAL, and runc fails the start.
MAX_PIDS = 4_194_304
# restartLimit.count and health retries: more is a typo or means "never" (10,000
# restarts 5 s apart take 14 hours; 10,000 checks 10 s apart 28 hours).
MAX_COUNT = 10_000
# Every duration of every input (x-extsvc timeouts and intervals, `extsvc run` and
# `extsvc service` options, facts): a week is more than any boot waits,
# and keeps a float of seconds exact to the nanosecond (format.quantities).
MAX_SECONDS = 7 * 24 * 3600
MAX_SECONDS_TEXT = "168h (7 days)"  # as a user writes it
