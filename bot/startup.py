"""A process's start-up without the garbage collector's repeated full scans.

Starting, a process creates most of the objects it will ever hold: modules, classes,
pydantic schemas, litellm's and chromadb's tables — half a million of them. Each full
collection while they pile up scans them all again: seven of them took 1.4-1.9 s of a
3.6-4.2 s start, and one in a running process took 0.1-0.4 s (a pause every request
waiting on that process felt). So `evobot` pauses collection while it loads; once the
runtime is built (or a worker is about to take jobs), what exists is frozen — moved to a
permanent generation that no collection scans, so later full ones only see what the work
allocates — and collection resumes. Start-up's own garbage (a few thousand objects) is
frozen with it rather than paid for with a full collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False


@contextmanager
def starting() -> Iterator[None]:
    """Around a command: collection paused until `loaded` (at the latest when the command
    ends). What was frozen stays frozen: the collection Python runs at exit skips it, so the
    process also exits sooner. A caller in the same process (a test) may `gc.unfreeze()`."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True
    try:
        yield
    finally:
        loaded()


def loaded() -> None:
    """Start-up is over: freeze what it made and collect as usual again. Nothing to do
    unless `starting` paused it (a test process, say, keeps its collector)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
