"""``python -m srcdiff show|export …``: see srcdiff/cli.py."""

import sys

from .cli import main

sys.exit(main())
