"""The package's version, read by setup.cfg (statically), records and --version."""

VERSION = "0.1.0"
