"""`python -m dreamvid.cli`: the `dreamvid` command."""

import sys

from dreamvid.cli import main

sys.exit(main())
