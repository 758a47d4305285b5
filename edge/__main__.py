"""`python -m edge serve` (or `check`, `meter`, `demo`) is the same as `edge-csms serve`."""

import sys

from edge.cli import main

sys.exit(main())
