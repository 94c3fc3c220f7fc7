"""`python -m fpslink` is the `fpslink` command."""

from fpslink.cli import main

main()
