"""``python -m mmfree.train``."""

from .run import main

raise SystemExit(main())
