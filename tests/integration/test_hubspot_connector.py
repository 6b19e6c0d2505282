"""The HubSpot connector against the HubSpot sandbox over real HTTP: batches, paging, the rate window, retries,
signed webhook deliveries and echo suppression. Time is a fake clock shared by the sandbox's window and the
client's limiter and retry sleeps, so a burst over the window costs no wall-clock time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from syncline.canonical.entities import Contact
from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.hubspot import (
    HubSpotClient,
    HubSpotRecordSystem,
    UpsertInput,
    WebhookTranslator,
    WindowLimiter,
)
from syncline.local.sandboxes.base import Reply, Request, Sandbox, route
from syncline.local.sandboxes.hubspot import HubSpotSandbox
from syncline.twoway import StaleWrite
from syncline.webhooks import SignatureError, verify

TOKEN = "pat-na1-sandbox-token"
APP_ID = "4242"
SECRET = "client-secret-of-the-syncline-app"


class FakeClock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class Receiver(Sandbox):
    """Our webhook endpoint: keeps each delivery's headers and raw body."""

    service = "receiver"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[dict[str, str], bytes]] = []

    @route("POST", r"/hooks/hubspot")
    def hook(self, request: Request) -> Reply:
        self.received.append((dict(request.headers), request.body))
        return Reply(204)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(clock=clock, window_max=10, window_ms=10_000) as server:
        server.add_app(TOKEN, APP_ID)
        yield server


def make_client(sandbox: HubSpotSandbox, clock: FakeClock, *, token: str = TOKEN, reserve: int = 0) -> HubSpotClient:
    return HubSpotClient(
        lambda: token,
        base_url=sandbox.url,
        retry=RetryPolicy(sleep=clock.sleep, attempts=5),
        limiter=WindowLimiter(clock=clock, sleep=clock.sleep, reserve=reserve),
    )


@pytest.fixture
def client(sandbox: HubSpotSandbox, clock: FakeClock) -> Iterator[HubSpotClient]:
    hubspot = make_client(sandbox, clock)
    yield hubspot
    hubspot.close()


# --- batches --------------------------------------------------------------------------------------------


def test_upsert_by_email_creates_then_updates_and_surfaces_refused_records(
    client: HubSpotClient, sandbox: HubSpotSandbox
) -> None:
    first = client.batch_upsert(
        "contact",
        [
            UpsertInput("ada@example.com", {"firstname": "Ada", "lastname": "Lovelace"}),
            UpsertInput("grace@example.com", {"firstname": "Grace"}),
            UpsertInput("not-an-email", {"firstname": "Nobody"}),
            UpsertInput("alan@example.com", {"shoe_size": "44"}),  # no such property
        ],
        id_property="email",
    )
    second = client.batch_upsert("contact", [UpsertInput("ADA@example.com", {"lastname": "King"})], id_property="email")

    assert sorted(o.properties["email"] or "" for o in first.results) == ["ada@example.com", "grace@example.com"]
    assert all(o.new for o in first.results)
    assert first.failed_ids == {"not-an-email", "alan@example.com"}
    codes = {e.ids[0]: e.details[0]["code"] for e in first.errors}
    assert codes == {"not-an-email": "INVALID_EMAIL", "alan@example.com": "PROPERTY_DOESNT_EXIST"}
    assert {e.category for e in first.errors} == {"VALIDATION_ERROR"}
    assert second.ok and second.results[0].new is False
    stored = sandbox.find("contacts", "email", "ada@example.com")
    assert stored is not None and stored.properties["lastname"] == "King"
    assert len(sandbox.objects["contacts"]) == 2
    assert sandbox.statuses[207] == 1 and sandbox.statuses[200] == 1


def test_batch_read_by_id_and_by_unique_property_reports_the_missing(
    client: HubSpotClient, sandbox: HubSpotSandbox
) -> None:
    ids = [sandbox.seed("contacts", {"email": f"c{n}@example.com", "firstname": f"C{n}"}) for n in range(130)]

    by_id = client.batch_read("contact", [*ids, "999999"], properties=["firstname"])
    by_email = client.read_records("contact", ["c7@example.com", "ghost@example.com"], id_property="email")

    assert sandbox.requests["POST /crm/v3/objects/contacts/batch/read"] == 3  # 100 + 31, then the e-mail read
    assert sorted(o.id for o in by_id.results) == sorted(ids)
    assert by_id.results[0].properties["firstname"] is not None
    assert [(e.category, e.ids) for e in by_id.errors] == [("OBJECT_NOT_FOUND", ["999999"])]
    assert list(by_email) == ["c7@example.com"]
    record = by_email["c7@example.com"]
    assert isinstance(record, Contact) and record.first_name == "C7" and record.contact_id == ids[7]


def test_canonical_records_round_trip_through_hubspot(client: HubSpotClient) -> None:
    contact = Contact(
        contact_id="local-1",
        email="lin@example.com",
        first_name="Lin",
        last_name="Ng",
        lifecycle_stage="customer",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )

    written = client.upsert_records("contact", [contact])
    read = client.read_records("contact", [written.results[0].id])[written.results[0].id]

    assert isinstance(read, Contact)
    assert read.model_dump(include={"email", "first_name", "last_name", "lifecycle_stage"}) == contact.model_dump(
        include={"email", "first_name", "last_name", "lifecycle_stage"}
    )
    assert read.source_version is not None and read.updated_at > contact.updated_at


def test_list_and_search_follow_the_after_cursor_to_the_end(client: HubSpotClient, sandbox: HubSpotSandbox) -> None:
    for n in range(230):
        sandbox.seed("companies", {"name": f"Co {n}", "industry": "RETAIL" if n % 3 == 0 else "ENERGY"})

    listed = [o.id for o in client.list_objects("company", page_size=100)]
    retail = list(
        client.search(
            "company",
            filter_groups=[{"filters": [{"propertyName": "industry", "operator": "EQ", "value": "RETAIL"}]}],
            properties=["name", "industry"],
            page_size=25,
        )
    )

    assert len(listed) == len(set(listed)) == 230
    assert sandbox.requests["GET /crm/v3/objects/companies"] == 3
    assert len(retail) == 77 and {o.properties["industry"] for o in retail} == {"RETAIL"}
    assert sandbox.requests["POST /crm/v3/objects/companies/search"] == 4  # 25 + 25 + 25 + 2


# --- the rate window --------------------------------------------------------------------------------------


def test_a_burst_beyond_the_window_is_held_back_by_the_limiter_and_everything_lands(
    client: HubSpotClient, sandbox: HubSpotSandbox, clock: FakeClock
) -> None:
    start = clock.now
    inputs = [UpsertInput(f"u{n}@example.com", {"firstname": f"U{n}"}) for n in range(2_500)]  # 25 requests

    result = client.batch_upsert("contact", inputs, id_property="email")

    assert result.ok and len(result.results) == 2_500
    assert len(sandbox.objects["contacts"]) == 2_500
    assert sandbox.throttled == 0 and sandbox.statuses[429] == 0
    assert client.http.retries == 0
    assert client.limiter.waits >= 2
    assert clock.now - start >= 20.0  # 25 requests at 10 per 10 s need at least two more windows


def test_without_the_header_limiter_429s_without_retry_after_are_retried_after_the_window(
    sandbox: HubSpotSandbox, clock: FakeClock
) -> None:
    # A reserve below zero never closes on Remaining=0: the sandbox has to refuse, and the 429 path must cope.
    blind = make_client(sandbox, clock, reserve=-1)
    inputs = [UpsertInput(f"v{n}@example.com", {"firstname": "V"}) for n in range(1_500)]  # 15 requests

    result = blind.batch_upsert("contact", inputs, id_property="email")

    assert result.ok and len(sandbox.objects["contacts"]) == 1_500
    assert sandbox.throttled >= 1
    assert blind.limiter.throttled == sandbox.throttled
    assert blind.http.retries == sandbox.throttled  # each refused request was sent again, none lost


# --- faults and refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options"),
    [("status", {"status": 503}), ("status", {"status": 502}), ("rate_limit", {}), ("drop", {})],
)
def test_transient_failures_are_retried(
    client: HubSpotClient, sandbox: HubSpotSandbox, kind: str, options: dict[str, int]
) -> None:
    sandbox.faults.add(kind, times=2, **options)

    result = client.batch_upsert("contact", [UpsertInput("r@example.com", {"firstname": "R"})], id_property="email")

    assert result.ok
    assert sandbox.faults.injected[kind] == 2
    assert client.http.retries == 2
    assert sandbox.find("contacts", "email", "r@example.com") is not None


def test_a_rate_limit_fault_answers_with_hubspots_429_body(sandbox: HubSpotSandbox) -> None:
    body = sandbox.rate_limited()
    assert body.status == 429 and "Retry-After" not in body.headers
    assert body.body["policyName"] == "TEN_SECONDLY_ROLLING" and body.body["correlationId"]
    assert body.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_a_400_is_not_retried_and_carries_hubspots_message(client: HubSpotClient, sandbox: HubSpotSandbox) -> None:
    with pytest.raises(ApiError) as raised:
        client.batch_upsert("contact", [UpsertInput("Ada", {"lastname": "L"})], id_property="firstname")

    assert raised.value.status == 400 and raised.value.retryable is False
    assert "not a unique property" in raised.value.reason
    assert sandbox.requests["POST /crm/v3/objects/contacts/batch/upsert"] == 1
    assert client.http.retries == 0


def test_a_wrong_token_is_refused_with_hubspots_401_and_never_shown(sandbox: HubSpotSandbox, clock: FakeClock) -> None:
    intruder = make_client(sandbox, clock, token="pat-wrong-secret-value")

    with pytest.raises(ApiError) as raised:
        list(intruder.list_objects("deal"))

    assert raised.value.status == 401 and raised.value.retryable is False
    assert "invalid" in raised.value.reason
    assert "pat-wrong-secret-value" not in str(raised.value) and "pat-wrong" not in repr(intruder)
    assert sandbox.requests["GET /crm/v3/objects/deals"] == 1


def test_every_answer_carries_the_rate_limit_headers(client: HubSpotClient, sandbox: HubSpotSandbox) -> None:
    response = client.http.request("GET", "/crm/v3/objects/contacts", params={"limit": 1})
    assert response.headers["X-HubSpot-RateLimit-Max"] == "10"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "9"
    assert int(response.headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 500_000 - 1
    assert client.limiter.remaining == 9 and client.limiter.limit == 10


# --- webhooks -----------------------------------------------------------------------------------------------


def test_signed_webhook_batches_carry_the_writer_and_our_echoes_are_dropped(
    client: HubSpotClient, sandbox: HubSpotSandbox
) -> None:
    with Receiver() as receiver:
        hook_url = f"{receiver.url}/hooks/hubspot"
        sandbox.subscribe(hook_url, scheme="hubspot", secret=SECRET)
        written = client.batch_upsert(
            "contact",
            [UpsertInput(f"w{n}@example.com", {"firstname": "W"}) for n in range(3)],
            id_property="email",
        )
        edited = written.results[0].id
        sandbox.user_edit("contacts", edited, {"lastname": "Edited by a person"})
        deal = sandbox.seed("deals", {"dealname": "Big", "dealstage": "appointmentscheduled"})
        sandbox.user_delete("deals", deal)

        sent = sandbox.flush_webhooks()
        received = list(receiver.received)

    # 3 creations + 6 property changes (email, firstname) from the API, one user edit, one user deletion.
    assert sent == 11
    assert len(received) == 2  # one batch per object type
    events = []
    for headers, body in received:
        verify("hubspot", SECRET, headers, body, method="POST", url=hook_url)
        with pytest.raises(SignatureError):
            verify("hubspot", SECRET, headers, body.replace(b"[", b"[ ", 1), method="POST", url=hook_url)
        with pytest.raises(SignatureError):
            verify("hubspot", "another-secret", headers, body, method="POST", url=hook_url)
        batch = json.loads(body)
        assert isinstance(batch, list)
        events.extend(batch)
    api_events = [e for e in events if e["changeSource"] == "INTEGRATION"]
    assert len(api_events) == 9 and {e["sourceId"] for e in api_events} == {APP_ID}
    assert {e["subscriptionType"] for e in events} == {
        "contact.creation",
        "contact.propertyChange",
        "deal.deletion",
    }
    user_edit = next(e for e in events if e["changeSource"] == "CRM_UI" and e["subscriptionType"].startswith("contact"))
    assert (user_edit["propertyName"], user_edit["propertyValue"]) == ("lastname", "Edited by a person")

    webhooks = WebhookTranslator(app_id=APP_ID)
    notices = [n for _, body in received for n in webhooks.notices(body)]

    assert sorted((n.entity, n.key, n.operation) for n in notices) == [
        ("contact", edited, "upsert"),
        ("deal", deal, "delete"),
    ]
    assert webhooks.stats["echo"] == 9


def test_auto_delivery_sends_a_signed_batch_before_the_write_answers(clock: FakeClock) -> None:
    with HubSpotSandbox(clock=clock, auto_deliver=True) as sandbox, Receiver() as receiver:
        sandbox.add_app(TOKEN, APP_ID)
        hook_url = f"{receiver.url}/hooks/hubspot"
        sandbox.subscribe(hook_url, topic="contact", scheme="hubspot", secret=SECRET)
        client = make_client(sandbox, clock)
        client.batch_upsert("contact", [UpsertInput("auto@example.com", {})], id_property="email")

        assert len(receiver.received) == 1
        headers, body = receiver.received[0]
        verify("hubspot", SECRET, headers, body, method="POST", url=hook_url)
        assert [e["subscriptionType"] for e in json.loads(body)] == ["contact.creation", "contact.propertyChange"]
        assert sandbox.pending == []


# --- two-way adapter ------------------------------------------------------------------------------------------


def test_the_record_system_writes_at_the_version_it_read_and_refuses_a_stale_one(
    client: HubSpotClient, sandbox: HubSpotSandbox
) -> None:
    system = HubSpotRecordSystem(client, "contact")
    key = sandbox.seed("contacts", {"email": "two@example.com", "firstname": "Two"})
    copy = system.read(key)
    assert copy is not None and copy.values["first_name"] == "Two"

    written = system.write(key, {**copy.values, "first_name": "Deux"}, expected_version=copy.version)
    assert written.values["first_name"] == "Deux"
    assert written.version is not None and copy.version is not None and written.version > copy.version

    sandbox.user_edit("contacts", key, {"firstname": "Someone else"})
    with pytest.raises(StaleWrite):
        system.write(key, {**written.values, "first_name": "Drei"}, expected_version=written.version)
    assert sandbox.objects["contacts"][key].properties["firstname"] == "Someone else"
    assert system.read("999999") is None


def test_contacts_by_email_are_listed_page_by_page_as_reads_see_them(
    sandbox: HubSpotSandbox, client: HubSpotClient
) -> None:
    from syncline.connectors.hubspot import HubSpotContactsByEmail

    for n in range(5):
        sandbox.seed("contacts", {"email": f"Person{n}@Example.com", "firstname": f"P{n}"})
    sandbox.seed("contacts", {"firstname": "No e-mail"})
    view = HubSpotContactsByEmail(client, name="crm")

    pages = list(view.iter_copies(page_size=2))

    listed = {key: copy for page in pages for key, copy in page}
    assert sorted(listed) == [f"person{n}@example.com" for n in range(5)]
    assert max(len(page) for page in pages) == 2
    assert listed["person3@example.com"] == view.read("person3@example.com")
