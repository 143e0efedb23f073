"""One service's life: its states, the runner (state machine), restart policy, conditions,
health, the clock.
"""
