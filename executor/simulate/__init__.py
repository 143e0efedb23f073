"""A boot played on virtual time: `extsvc plan --simulate`, with the scripted runtime and clock
the tests use too.
"""
