"""The REST API, the dashboard and the event feed: an adapter like Slack's and Telegram's,
over HTTP, for programs and for people who want to see an agent's evolution."""
