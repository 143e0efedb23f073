"""The supervision tree: every service's runner, dependency order, reloads, the configuration
watcher.
"""
