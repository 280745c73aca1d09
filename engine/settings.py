"""Engine settings: plain values handed in by the composition root (bot/config.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class EngineSettings(BaseModel):
    llm_model: str = "local/smollm2"
    evolver_model: str | None = None
    judge_model: str | None = None
    temperature: float = 0.2
    max_steps: int = 5
    llm_tools: str = "auto"  # auto | on | off: offer tools in function-calling form
    llm_timeout_s: float = 60.0
    llm_retries: int = 1
    llm_fallbacks: list[str] = []
    # evolution triggers: after N new ratings, or at once for a rating <= 2 with a comment
    evolve_after_ratings: int = 3
    evolve_quiet_s: float = 300.0
    # routing by confidence
    promote_confidence: float = 0.75
    canary_confidence: float = 0.5
    canary_share: float = 0.2
    canary_min_ratings: int = 5
    canary_drop_probability: float = 0.8
    # degradation watch
    watch_min_ratings: int = 5
    watch_rollback_probability: float = 0.9
    # rolling window: the active version's last N ratings against recently active versions'
    window_ratings: int = 10
    window_min_ratings: int = 5
    window_versions: int = 5
    window_rollback_probability: float = 0.9
    # replay
    replay_negatives: int = 3
    replay_positives: int = 2
    # jobs
    job_retry_intervals: list[int] = [2, 10, 30]
    # an answer the platform refused is posted again after each of these waits (~9 min)
    redeliver_after_s: list[int] = [5, 15, 30, 60, 120, 300]
    # a running execution beats every heartbeat_s; silent for stale_running_s: its worker died
    heartbeat_s: float = 10.0
    stale_running_s: float = 45.0
    pending_grace_s: float = 15.0
    # answers stream: the partial message is edited at most every stream_every_s (0: the
    # answer is posted whole when it is done)
    stream_every_s: float = 0.5
    periodic_evolution_s: float = 86_400.0  # 0: no periodic evolutions
    tool_timeout_s: float = 20.0
    # an objective farther than this (cosine distance) from every recorded one is a new type
    novelty_distance: float = 0.6
    admins: list[str] = []
    # files shared with the agent and made by it, one directory per tenant (engine/files)
    files_dir: Path = Path("data/files")

    @property
    def evolver(self) -> str:
        return self.evolver_model or self.llm_model

    @property
    def judge(self) -> str:
        return self.judge_model or self.llm_model
