"""Platform adapters: converters (pure) + thin apps that call engine.service."""
