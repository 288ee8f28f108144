"""Benchmarks that print figures (``make bench``); importable so workers can load the floor workflow."""
