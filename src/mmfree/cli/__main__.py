"""``python -m mmfree.cli``: the ``mmfree`` command (used by the FuseSoC generator)."""

import sys

from . import main

sys.exit(main())
