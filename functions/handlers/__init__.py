"""Lambda entry points: parse the event, call the engine, shape the response.

Cold start: importing a handler module creates a few hundred thousand objects (boto3's, pydantic's,
ours) that live as long as the execution environment. With the default thresholds the garbage
collector examines the young ones every 700 allocations throughout those imports and frees almost
nothing: about a tenth of the webhook function's import time (docs/PERFORMANCE.md). So the young
generation's threshold is raised while a handler module is imported, and every handler module ends by
calling :func:`initialised`, which puts the default back and freezes what the imports built
(``gc.freeze``): later collections, during invocations, no longer walk those objects at all.
"""

from __future__ import annotations

import gc

DEFAULT_THRESHOLDS = gc.get_threshold()
IMPORT_THRESHOLD = 100_000  # a handful of young-generation collections per cold start instead of over a thousand


def initialised() -> None:
    """The end of a handler module's import: collect normally again, never revisiting what init built."""
    gc.freeze()
    gc.set_threshold(*DEFAULT_THRESHOLDS)


gc.set_threshold(IMPORT_THRESHOLD, *DEFAULT_THRESHOLDS[1:])
