"""The evolution engine: feedback → reflected learnings → bounded prompt edits → validated,
routed, announced and watched new versions. See docs/ARCHITECTURE.md, "Rating → evolution".

One module per step, joined by the `Attempt` record (attempt.py): gather (focus.py settles
the trigger), reflect, propose, validate, route, record, announce — orchestrated by evolve.py.
review.py runs the canary decision (canary.py), the degradation watches (watch.py: a fresh
promotion against its parent; window.py: recent ratings against a recent version; both roll
back and queue the fix through rollback.py) and the tools' lifecycle; approval.py applies or
dismisses what waits for an admin.

The package imports nothing itself: other packages use the pure step modules (checks.py)
without pulling in the whole engine, and callers import each step from its module.
"""
