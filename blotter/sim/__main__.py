"""``python -m blotter.sim``: run the simulator (same options as ``blotter sim``)."""

import sys

from .cli import main

sys.exit(main())
