"""The local console adapter behind `evobot chat`."""
