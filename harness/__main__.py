"""`python -m harness` is the same as the `exwb` command."""

from harness.cli import main

raise SystemExit(main())
