"""`python -m edge_ser` is the same as the `edge-ser` command."""

import sys

from edge_ser.cli import main

sys.exit(main())
