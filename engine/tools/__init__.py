"""Tools the agent can call: the built-in sandboxed `python` and tools it made for itself."""
