"""`python -m core ...`: see core/cli.py."""

import sys

try:
    from core.cli import main
except KeyboardInterrupt:  # Ctrl-C while JAX is still importing
    sys.exit(130)

sys.exit(main())
