"""``python -m hierreg``: see :mod:`hierreg.cli`."""

import sys

from hierreg.cli import main

sys.exit(main())
