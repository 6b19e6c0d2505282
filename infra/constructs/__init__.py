"""One construct per capability; ``infra.stack`` composes them from the topology."""

from __future__ import annotations


def pascal(spec_id: str) -> str:
    """A topology id (``sync_storefront``) as a construct id (``SyncStorefront``)."""
    return "".join(part.capitalize() for part in spec_id.split("_"))
