"""The Slack adapter: a Bolt AsyncApp (HTTP or Socket Mode), a Web API notifier, and the pure
converters between Slack payloads / Block Kit and the engine's types."""
