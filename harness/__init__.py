"""exwb-harness: simulate and check Exchange hybrid writeback before touching production."""

__version__ = "0.1.0"
