"""A boot played on virtual time: ``extsvc plan --simulate`` (``boot``, its ``facts`` file),
on the one virtual clock (``clock``) and the one scripted runtime (``runtime``) that the
executor's policy tests run on too.
"""
