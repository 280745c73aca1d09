"""The evolution engine: feedback → reflected learnings → bounded prompt edits → validated,
routed, announced and watched new versions. See docs/ARCHITECTURE.md, "Rating → evolution"."""

from engine.evolution.loop import Outcome, apply_approved, dismiss_approval, evolve, review

__all__ = ["Outcome", "apply_approved", "dismiss_approval", "evolve", "review"]
