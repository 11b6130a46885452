"""The `deploy-assets` command: commands, output, the in-process runner, the demo and the old
Makefile's vocabulary. The code location (definitions.py) never imports this package."""

from deploy_assets.cli.commands import build_parser, main  # noqa: F401 (the entry point)
