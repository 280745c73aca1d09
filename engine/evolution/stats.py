"""Rating statistics for canary and degradation decisions (Beta-binomial, exact)."""

from __future__ import annotations

import hashlib
from math import exp, lgamma, log


def _log_beta(a: float, b: float) -> float:
    return lgamma(a) + lgamma(b) - lgamma(a + b)


def prob_worse(pos_new: int, neg_new: int, pos_old: int, neg_old: int) -> float:
    """P(p_new < p_old) with p ~ Beta(positives + 1, negatives + 1) (Evan Miller's closed form).

    A rating of 4-5 is a success. Exact for integer parameters, no sampling.
    """
    a_new, b_new = pos_new + 1, neg_new + 1
    a_old, b_old = pos_old + 1, neg_old + 1
    # P(p_old > p_new) = sum_{i<a_old} B(a_new+i, b_new+b_old)
    #                    / ((b_old+i) B(1+i, b_old) B(a_new, b_new))
    total = 0.0
    for i in range(a_old):
        total += exp(
            _log_beta(a_new + i, b_new + b_old)
            - log(b_old + i)
            - _log_beta(1 + i, b_old)
            - _log_beta(a_new, b_new)
        )
    return min(1.0, max(0.0, total))


def in_canary(tenant_id: str, user_id: str, share: float) -> bool:
    """Deterministic split: the same user always lands in the same arm."""
    digest = hashlib.sha256(f"{tenant_id}:{user_id}".encode()).digest()
    bucket = int.from_bytes(digest[:4], "big") % 10_000
    return bucket < share * 10_000
