#!/usr/bin/env python3
"""dreamvid's entry script: `python render.py COMMAND ...` (the same as the `dreamvid` command)."""

import sys

from dreamvid.cli import main

if __name__ == "__main__":
    sys.exit(main())
