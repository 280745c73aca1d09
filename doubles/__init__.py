"""HTTP test doubles of the platforms evobot talks to (Slack Web API, Telegram Bot API).

They live outside the shipped packages: tests and benchmarks import them, the wheel doesn't
contain them. The bot reaches them exactly as it reaches the real services, through
SLACK_API_URL / TELEGRAM_API_URL.
"""
