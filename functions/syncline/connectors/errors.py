"""The error every connector raises, importable without the HTTP stack (so configuration and rule checks stay
light at cold start)."""

from __future__ import annotations


class ApiError(RuntimeError):
    """A request the service refused or kept failing. ``retryable`` says whether trying later may help."""

    def __init__(self, service: str, status: int | None, reason: str, *, retryable: bool) -> None:
        self.service, self.status, self.reason, self.retryable = service, status, reason, retryable
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{service}: {where}: {reason}"[:500])
