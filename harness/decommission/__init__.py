"""Decommissioning the last Exchange Server: checks, plan, steps and the emulated shell."""
