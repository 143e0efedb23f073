"""runc's error lines reduced to their cause, for events a person reads.

runc reports a failed start as one logfmt line of ~300 characters::

    time="2026-11-22T04:31:13Z" level=error msg="runc create failed: unable to start
    container process: exec: \\"/bin/x\\": stat /bin/x: no such file or directory"

The event should say ``exec: "/bin/x": stat /bin/x: no such file or directory``:
the ``msg`` value, unescaped, without the chain of wrappers runc puts in front
(they name runc's internal steps, not the problem). The full line stays in the log.
"""

from __future__ import annotations

import re

_LOGFMT_MSG = re.compile(r'(?:^|\s)msg="((?:[^"\\]|\\.)*)"')
_TEXT_LEVEL = re.compile(r"^(?:ERRO|FATA|WARN)\[\d+\]\s*")
# Prefixes runc (1.0-1.2) puts before the cause; removed as long as one matches.
_WRAPPERS = re.compile(
    r"^(?:runc (?:run|create|start|exec|delete) failed: "
    r"|unable to start container process: "
    r"|error during container init: "
    r"|unable to create new parent process: "
    r"|container_linux\.go:\d+: starting container process caused: "
    r"|process_linux\.go:\d+: \w[\w ]* caused: "
    r")"
)


def runc_cause(text: str) -> str:
    """The cause in a runc error line; any other text is returned unchanged."""
    match = _LOGFMT_MSG.search(text)
    if match is not None:
        message = re.sub(r"\\(.)", r"\1", match.group(1))
    else:
        message = _TEXT_LEVEL.sub("", text)
        if message == text and not text.startswith("runc "):
            return text
    while True:
        shorter = _WRAPPERS.sub("", message, count=1)
        if shorter == message:
            return message.strip()
        message = shorter
