"""`python -m core ...`: see core/cli.py."""

import sys

try:
    from core.cli import main

    status = main()
except KeyboardInterrupt:  # Ctrl-C while JAX and the commands are still importing
    status = 130
sys.exit(status)
