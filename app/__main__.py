"""`python -m app` is the `pitwall` command."""

from app.cli import main

main()
