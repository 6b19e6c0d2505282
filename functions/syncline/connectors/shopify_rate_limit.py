"""Cost-based rate limiting for Shopify's GraphQL Admin API: one token bucket per shop, shared by every
concurrent invocation.

Shopify gives each app a bucket of points per shop (``maximumAvailable``) that refills at ``restoreRate``
points per second; both depend on the shop's plan, so they are never hard-coded here but read from each
response's ``extensions.cost.throttleStatus``. Before a call, ``CostLimiter.acquire`` takes the query's
expected cost from the shared bucket, waiting the time the restore rate implies when it is short. After the
call, ``reconcile`` refunds what the server did not charge and never lets the bucket be more optimistic
than the server's own ``currentlyAvailable``. The bucket's state lives behind ``BucketStore``: DynamoDB
(``syncline.adapters.rate_limit_dynamodb``) in AWS, memory in tests. Saves are compare-and-swap on a
revision, so concurrent takers never spend the same points twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from syncline.connectors.shopify_models import QueryCost, ThrottleStatus

INFLIGHT_SECONDS = 120.0  # longer than any call with its retries lasts


@dataclass(frozen=True)
class BucketState:
    available: float
    updated_at: float  # epoch seconds (shared by many machines, so wall-clock time)
    maximum: float
    restore_rate: float
    revision: int = 0
    # Points taken by calls that have not been reconciled yet: the server has not charged them all, so its
    # ``currentlyAvailable`` is higher than what is really left by about this much. Forgotten after
    # ``INFLIGHT_SECONDS`` without a reconcile (an invocation that died mid-call never gives its share back).
    inflight: float = 0.0

    def refilled(self, now: float) -> BucketState:
        elapsed = max(0.0, now - self.updated_at)
        inflight = self.inflight if elapsed < INFLIGHT_SECONDS else 0.0
        # The server's bucket stops filling at its maximum and will still be charged for the calls in flight.
        available = min(self.maximum - inflight, self.available + elapsed * self.restore_rate)
        return replace(self, available=available, updated_at=now, inflight=inflight)

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` points are available (0 when they already are)."""
        short = cost - self.available
        return 0.0 if short <= 0 else short / self.restore_rate if self.restore_rate > 0 else 1.0


class BucketStore(Protocol):
    def load(self, shop: str) -> BucketState | None: ...

    def save(self, shop: str, state: BucketState, *, expected_revision: int) -> bool:
        """Store ``state`` only if the stored revision is still ``expected_revision`` (0: absent)."""


class InMemoryBucketStore:
    """A bucket store for one process (tests, the local demo)."""

    def __init__(self) -> None:
        self._states: dict[str, BucketState] = {}
        self._lock = threading.Lock()
        self.conflicts = 0

    def load(self, shop: str) -> BucketState | None:
        with self._lock:
            return self._states.get(shop)

    def save(self, shop: str, state: BucketState, *, expected_revision: int) -> bool:
        with self._lock:
            current = self._states.get(shop)
            if (current.revision if current else 0) != expected_revision:
                self.conflicts += 1
                return False
            self._states[shop] = state
            return True


def throttled_wait(requested: float, throttle: ThrottleStatus) -> float:
    """Seconds the server's own status says to wait before ``requested`` points are available."""
    short = requested - throttle.currently_available
    return max(0.0, short / throttle.restore_rate) if throttle.restore_rate > 0 else 1.0


@dataclass
class CostLimiter:
    """The shared bucket of one shop. ``sleep`` and ``clock`` are injectable for tests."""

    store: BucketStore
    shop: str
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 60.0  # one wait is never longer (a wrong restore rate must not park a Lambda)
    waited: float = 0.0  # total seconds slept, for metrics and tests

    def acquire(self, cost: float) -> float:
        """Take ``cost`` points, waiting while the bucket is short; return the points taken.

        Before the first response the shop's limits are unknown, so nothing is taken (0): the response
        creates the bucket with the server's numbers.
        """
        while True:
            stored = self.store.load(self.shop)
            if stored is None:
                return 0.0
            state = stored.refilled(self.clock())
            take = min(cost, state.maximum)  # more than the whole bucket can never be available
            wait = state.wait_for(take)
            if wait > 0:
                self._sleep(wait)
                continue
            taken = replace(
                state, available=state.available - take, inflight=state.inflight + take, revision=stored.revision + 1
            )
            if self.store.save(self.shop, taken, expected_revision=stored.revision):
                return take

    def reconcile(self, taken: float, cost: QueryCost | None, *, charged: bool = True) -> None:
        """Bring the bucket in line with the server after a call that took ``taken`` points.

        ``charged`` is False when the server did not run the query (THROTTLED): all ``taken`` comes back.
        """
        throttle = cost.throttle if cost else None
        while True:
            stored = self.store.load(self.shop)
            now = self.clock()
            if stored is None:
                if throttle is None:
                    return
                updated = BucketState(
                    available=min(throttle.currently_available, throttle.maximum_available),
                    updated_at=now,
                    maximum=throttle.maximum_available,
                    restore_rate=throttle.restore_rate,
                )
            else:
                state = stored.refilled(now)
                spent = ((cost.actual if cost.actual is not None else cost.requested) or 0.0) if cost else taken
                available = state.available + taken - (spent if charged else 0.0)
                inflight = max(0.0, state.inflight - taken)
                if throttle is not None:
                    # Never more optimistic than the server, less what other calls took and it has not seen yet.
                    ceiling = min(throttle.currently_available - inflight, throttle.maximum_available)
                    updated = replace(
                        state,
                        available=min(available, ceiling),
                        maximum=throttle.maximum_available,
                        restore_rate=throttle.restore_rate,
                        inflight=inflight,
                    )
                else:
                    updated = replace(state, available=min(available, state.maximum), inflight=inflight)
            revision = stored.revision if stored else 0
            if self.store.save(self.shop, replace(updated, revision=revision + 1), expected_revision=revision):
                return

    def _sleep(self, seconds: float) -> None:
        seconds = min(seconds, self.max_wait)
        self.waited += seconds
        self.sleep(seconds)
