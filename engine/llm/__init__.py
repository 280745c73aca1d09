"""The LLM gateway (litellm) and the providers evobot registers with it."""
