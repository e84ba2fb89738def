"""`python -m harness` is the same as the `exwb` command."""

from harness.cli import main

if __name__ == "__main__":  # not when a spawned worker (exwb run --jobs) imports it
    raise SystemExit(main())
