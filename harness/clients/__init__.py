"""Clients of real services: what the engine, scenarios and decommission use to talk HTTP.

They never import a fake (tests/test_layers.py), so they run against Exchange Online as they
run against `exwb serve`.
"""
