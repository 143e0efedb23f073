"""``python -m extsvc``: the same command as the ``extsvc`` script."""

import sys

from extsvc.entry import main

sys.exit(main())
