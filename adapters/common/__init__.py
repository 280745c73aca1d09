"""Infrastructure every platform adapter shares: redelivery de-duplication, per-chat pacing
across processes, and the notifier's dispatch over the engine's outbound events."""
