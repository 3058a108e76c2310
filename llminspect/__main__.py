"""``python -m llminspect doctor|prepare|export``: the same as the ``llminspect`` command."""

import sys

from llminspect.teaching.cli import main

sys.exit(main())
