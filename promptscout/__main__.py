"""``python -m promptscout`` runs the CLI."""

import sys

from promptscout.cli import main

sys.exit(main())
