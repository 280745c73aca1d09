"""The reaction → rating map, shared by every platform."""

from __future__ import annotations

import pytest

from engine.ratings import rating_of


@pytest.mark.parametrize(
    ("emoji", "rating"),
    [("1️⃣", 1), ("5️⃣", 5), ("⭐", 5), ("❤", 5), ("❤️", 5), ("👍", 4), ("👍🏽", 4), ("✅", 4),
     ("🤔", 3), ("👎", 2), ("👎🏿", 2), ("💩", 1), ("🤡", 1)],
)
def test_reactions_rate(emoji: str, rating: int) -> None:
    assert rating_of(emoji) == rating


def test_other_reactions_are_not_ratings_and_the_map_is_configurable() -> None:
    assert rating_of("🍕") is None
    assert rating_of("🍕", {"🍕": 5}) == 5
    assert rating_of("👍", {"🍕": 5}) is None
