"""``python -m chatmagic``: the ``chatmagic`` command."""

import sys

from .cli import main

sys.exit(main())
