"""``python -m bottomhalf.cli``: the same as the ``bh`` command."""

import sys

from . import main

sys.exit(main())
