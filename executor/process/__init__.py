"""Child processes: the environment they get, spawning, the reaper, short-lived helpers."""
