"""The running executor: start-up and its head start, the event loop's main, control socket,
signals, sd_notify.
"""
