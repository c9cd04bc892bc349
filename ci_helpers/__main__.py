"""`python -m ci_helpers` is `ci-helpers` (the actions call it this way from their private venv)."""

from .cli import main

main()
