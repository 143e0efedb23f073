"""The host seen from the executor: readiness of services outside the plan, probes, inotify."""
