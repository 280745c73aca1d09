"""The Slack adapter: a Bolt AsyncApp (HTTP or Socket Mode, `app`), a Web API notifier
(`notifier`), and the pure converters between Slack payloads / Block Kit and the engine's
types (`inbound`, `outbound`)."""
