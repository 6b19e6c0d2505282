"""The shared Shopify cost bucket, with a fake clock and a recorded sleep (no sockets, no waiting)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from syncline.connectors.shopify_models import QueryCost, ThrottleStatus
from syncline.connectors.shopify_rate_limit import BucketState, CostLimiter, InMemoryBucketStore, throttled_wait
from tests.conftest import SHARED_FIXTURES


@dataclass
class FakeClock:
    now: float = 1_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def cost(
    requested: float, actual: float | None, available: float, maximum: float = 100.0, rate: float = 10.0
) -> QueryCost:
    return QueryCost(requested, actual, ThrottleStatus(maximum, available, rate))


def limiter(store: InMemoryBucketStore | None = None, clock: FakeClock | None = None) -> tuple[CostLimiter, FakeClock]:
    clock = clock or FakeClock()
    return CostLimiter(store or InMemoryBucketStore(), "shop.myshopify.com", clock=clock, sleep=clock.sleep), clock


def test_before_the_first_response_nothing_is_taken_and_the_response_creates_the_bucket() -> None:
    bucket, _ = limiter()
    assert bucket.acquire(30) == 0.0
    bucket.reconcile(0.0, cost(30, 12, available=988, maximum=1000, rate=50))
    state = bucket.store.load(bucket.shop)
    assert state is not None
    assert (state.available, state.maximum, state.restore_rate) == (988, 1000, 50)


def test_limits_come_from_the_server_not_from_constants() -> None:
    bucket, _ = limiter()
    bucket.reconcile(0.0, cost(1, 1, available=1999, maximum=2000, rate=100))
    bucket.reconcile(0.0, cost(1, 1, available=99, maximum=100, rate=10))  # the shop changed plan
    state = bucket.store.load(bucket.shop)
    assert state is not None
    assert (state.maximum, state.restore_rate) == (100, 10)


def test_a_short_bucket_waits_the_time_the_restore_rate_implies() -> None:
    store = InMemoryBucketStore()
    store.save("shop.myshopify.com", BucketState(5.0, 1_000.0, 100.0, 10.0, revision=1), expected_revision=0)
    bucket, clock = limiter(store)
    assert bucket.acquire(25) == 25
    assert clock.slept == [pytest.approx(2.0)]  # 20 points short at 10 points/s
    state = store.load(bucket.shop)
    assert state is not None
    assert state.available == pytest.approx(0.0)
    assert state.inflight == 25


def test_reconcile_refunds_what_the_server_did_not_charge() -> None:
    store = InMemoryBucketStore()
    store.save("shop.myshopify.com", BucketState(100.0, 1_000.0, 100.0, 10.0, revision=1), expected_revision=0)
    bucket, _ = limiter(store)
    taken = bucket.acquire(40)
    bucket.reconcile(taken, cost(40, 4, available=96))
    state = store.load(bucket.shop)
    assert state is not None
    assert state.available == 96
    assert state.inflight == 0


def test_the_bucket_is_never_more_optimistic_than_the_server_less_calls_still_in_flight() -> None:
    store = InMemoryBucketStore()
    store.save("shop.myshopify.com", BucketState(100.0, 1_000.0, 100.0, 10.0, revision=1), expected_revision=0)
    first, _ = limiter(store)
    second, _ = limiter(store)
    a = first.acquire(30)
    second.acquire(30)  # still in flight when the first call's answer arrives
    # Someone else (another app install, the admin) used points too: the server has less than we think.
    first.reconcile(a, cost(30, 30, available=50))
    state = store.load(first.shop)
    assert state is not None
    assert state.available == 20  # 50 reported, less the 30 the second call took and the server has not seen


def test_a_throttled_call_gives_back_everything_it_took() -> None:
    store = InMemoryBucketStore()
    store.save("shop.myshopify.com", BucketState(100.0, 1_000.0, 100.0, 10.0, revision=1), expected_revision=0)
    bucket, _ = limiter(store)
    taken = bucket.acquire(30)
    bucket.reconcile(taken, cost(30, None, available=100), charged=False)
    state = store.load(bucket.shop)
    assert state is not None
    assert state.available == 100


def test_a_lost_compare_and_swap_reads_again_instead_of_spending_twice() -> None:
    class Racy(InMemoryBucketStore):
        def __init__(self) -> None:
            super().__init__()
            self.raced = False

        def save(self, shop: str, state: BucketState, *, expected_revision: int) -> bool:
            if expected_revision == 1 and not self.raced:  # another invocation takes 60 first, 30 still out
                self.raced = True
                other = BucketState(40.0, state.updated_at, 100.0, 10.0, revision=2, inflight=30)
                super().save(shop, other, expected_revision=1)
            return super().save(shop, state, expected_revision=expected_revision)

    store = Racy()
    store.save("shop.myshopify.com", BucketState(100.0, 1_000.0, 100.0, 10.0, revision=1), expected_revision=0)
    bucket, clock = limiter(store)
    assert bucket.acquire(50) == 50
    assert store.conflicts == 1
    assert clock.slept == [pytest.approx(1.0)]  # 40 left after the other taker: 10 short at 10/s
    state = store.load(bucket.shop)
    assert state is not None
    assert state.inflight == 80


def test_a_bucket_left_in_flight_by_a_dead_invocation_is_forgotten() -> None:
    state = BucketState(0.0, 1_000.0, 100.0, 10.0, inflight=80)
    assert state.refilled(1_001.0).inflight == 80
    assert state.refilled(1_000.0 + 600).inflight == 0


def test_throttled_wait_reads_the_servers_numbers() -> None:
    fixtures = json.loads((SHARED_FIXTURES / "shopify/graphql/cost_extension_responses.json").read_text())
    success = next(r for r in fixtures["responses"] if r["id"] == "shopify-dev-rate-limit-example")
    parsed = QueryCost.parse(success["body"]["extensions"])
    assert parsed is not None
    assert parsed.throttle == ThrottleStatus(1000.0, 997.0, 50.0)
    assert throttled_wait(1097, parsed.throttle) == pytest.approx(2.0)
    assert throttled_wait(10, parsed.throttle) == 0.0


def test_a_full_bucket_stays_short_by_what_is_still_in_flight() -> None:
    # The server's bucket stops filling at its maximum and will still be charged for calls in flight, so a
    # bucket refilled while a call is out must not offer the whole maximum again.
    store = InMemoryBucketStore()
    store.save("shop.myshopify.com", BucketState(100.0, 1_000.0, 100.0, 10.0, revision=1), expected_revision=0)
    first, clock = limiter(store)
    taken = first.acquire(30)
    clock.now += 60  # long enough to refill completely
    answered: list[float] = []

    def first_call_answers(seconds: float) -> None:
        answered.append(seconds)
        clock.now += seconds
        first.reconcile(taken, cost(30, 30, available=100))

    second = CostLimiter(store, first.shop, clock=clock, sleep=first_call_answers)
    assert second.acquire(100) == 100
    assert answered  # it had to wait for the first call to come back, though 60 s had refilled everything
    state = store.load(first.shop)
    assert state is not None
    assert state.inflight == 100
