"""Service logs: the stored format, rotation, followers, the console, journald and kmsg."""
