"""evobot's platform-agnostic core."""
