"""Configuration: the only module that reads the environment (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.settings import EngineSettings


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("data"), alias="DATA_DIR")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    chroma_url: str | None = Field(default=None, alias="CHROMA_URL")
    embedding_model: str | None = Field(default=None, alias="EMBEDDING_MODEL")
    knowledge_key: str | None = Field(default=None, alias="EVOBOT_KNOWLEDGE_KEY")
    llm_model: str = Field(default="local/smollm2", alias="LLM_MODEL")
    evolver_model: str | None = Field(default=None, alias="EVOLVER_MODEL")
    judge_model: str | None = Field(default=None, alias="JUDGE_MODEL")
    llm_timeout_s: float = Field(default=120.0, alias="LLM_TIMEOUT_S")
    llm_fallbacks: str = Field(default="", alias="LLM_FALLBACKS")
    llm_tools: Literal["auto", "on", "off"] = Field(default="auto", alias="LLM_TOOLS")
    slack_bot_token: str | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_redirect_uri: str | None = Field(default=None, alias="SLACK_REDIRECT_URI")
    # at most one post per channel per this many seconds (Slack allows about 1/s)
    slack_channel_pace_s: float = Field(default=1.0, alias="EVOBOT_SLACK_PACE_S")
    telegram_bot_token: str | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field(default="https://api.telegram.org/bot", alias="TELEGRAM_API_URL")
    telegram_webhook_secret: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    # the public URL of /telegram/webhook: when set, `evobot serve` registers it (setWebhook)
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    # at most one message per chat per this many seconds (Telegram allows about 1/s)
    telegram_pace_s: float = Field(default=1.0, alias="EVOBOT_TELEGRAM_PACE_S")
    telegram_max_retries: int = Field(default=3, alias="EVOBOT_TELEGRAM_MAX_RETRIES")
    telegram_poll_timeout_s: float = Field(default=10.0, alias="EVOBOT_TELEGRAM_POLL_TIMEOUT_S")
    e2b_api_key: str | None = Field(default=None, alias="E2B_API_KEY")
    port: int = Field(default=8000, alias="PORT")
    host: str = Field(default="0.0.0.0", alias="EVOBOT_HOST")
    evobot_admins: str = Field(default="", alias="EVOBOT_ADMINS")
    # tuning knobs (tests and small deployments)
    evolve_after_ratings: int = Field(default=3, alias="EVOBOT_EVOLVE_AFTER_RATINGS")
    job_retry_intervals: str = Field(default="2,10,30", alias="EVOBOT_JOB_RETRY_INTERVALS")
    # an answer Slack or Telegram refused (down, rate-limiting) is posted again after each
    redeliver_after_s: str = Field(default="5,15,30,60,120,300", alias="EVOBOT_REDELIVER_AFTER_S")
    reconcile_every_s: float = Field(default=15.0, alias="EVOBOT_RECONCILE_EVERY_S")
    # how often each active tenant gets an evolution over its recent answers (0: never)
    periodic_evolution_s: float = Field(default=86_400.0, alias="EVOBOT_PERIODIC_EVOLUTION_S")
    stale_running_s: float = Field(default=45.0, alias="EVOBOT_STALE_RUNNING_S")
    # a pending execution older than this whose job is gone is queued again by the reconciler
    pending_grace_s: float = Field(default=15.0, alias="EVOBOT_PENDING_GRACE_S")
    heartbeat_s: float = Field(default=10.0, alias="EVOBOT_HEARTBEAT_S")
    # one sandboxed tool call (the python tool loading pandas and drawing a chart needs ~2 s)
    tool_timeout_s: float = Field(default=20.0, alias="EVOBOT_TOOL_TIMEOUT_S")
    # a streamed answer is edited at most every this many seconds (0: post answers whole)
    stream_every_s: float = Field(default=0.5, ge=0, alias="EVOBOT_STREAM_EVERY_S")
    allow_model_requests: bool = Field(default=True, alias="EVOBOT_ALLOW_MODEL_REQUESTS")
    # REST API, dashboard, operator metrics and logs
    log_format: Literal["text", "json"] = Field(default="text", alias="LOG_FORMAT")
    api_rate_limit: int = Field(default=120, alias="EVOBOT_API_RATE_LIMIT")  # per key per min
    api_wait_s: float = Field(default=30.0, alias="EVOBOT_API_WAIT_S")  # execute, then 202
    session_secret: str | None = Field(default=None, alias="EVOBOT_SESSION_SECRET")
    prometheus_multiproc_dir: str | None = Field(default=None, alias="PROMETHEUS_MULTIPROC_DIR")
    worker_metrics_port: int | None = Field(default=None, alias="EVOBOT_WORKER_METRICS_PORT")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url.removeprefix("postgres://")
            if url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'evobot.db').resolve()}"

    @property
    def slack_configured(self) -> bool:
        """Single workspace (bot token) or OAuth installs (client id + secret), signed."""
        return bool(self.slack_signing_secret) and bool(
            self.slack_bot_token or (self.slack_client_id and self.slack_client_secret)
        )

    @property
    def admins(self) -> list[str]:
        return [a.strip() for a in self.evobot_admins.split(",") if a.strip()]

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            llm_model=self.llm_model,
            evolver_model=self.evolver_model,
            judge_model=self.judge_model,
            llm_timeout_s=self.llm_timeout_s,
            llm_tools=self.llm_tools,
            llm_fallbacks=[m.strip() for m in self.llm_fallbacks.split(",") if m.strip()],
            evolve_after_ratings=self.evolve_after_ratings,
            job_retry_intervals=[
                int(x) for x in self.job_retry_intervals.split(",") if x.strip()
            ],
            redeliver_after_s=[int(x) for x in self.redeliver_after_s.split(",") if x.strip()],
            admins=self.admins,
            stale_running_s=self.stale_running_s,
            pending_grace_s=self.pending_grace_s,
            heartbeat_s=self.heartbeat_s,
            stream_every_s=self.stream_every_s,
            periodic_evolution_s=self.periodic_evolution_s,
            files_dir=self.data_dir / "files",
            tool_timeout_s=self.tool_timeout_s,
        )


def load_config() -> Config:
    return Config()
