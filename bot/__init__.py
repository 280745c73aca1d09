"""Composition root: configuration, wiring, CLI and processes."""
