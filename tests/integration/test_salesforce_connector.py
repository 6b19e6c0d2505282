"""Contract tests: the Salesforce connector over real HTTP against the Salesforce sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.oauth2 import ClientCredentials, InMemoryTokenStore, OAuth2ClientCredentials, OAuth2Settings
from syncline.connectors.salesforce import SalesforceClient, SalesforceSettings, notices_from_cdc
from syncline.local.sandboxes.salesforce import SalesforceSandbox

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COLLECTIONS = "PATCH /services/data/v62.0/composite/sobjects/Contact/Syncline_Id__c"


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(clients={"consumer": "consumer-secret"}, page_size=2) as server:
        yield server


@pytest.fixture
def client(sandbox: SalesforceSandbox) -> SalesforceClient:
    settings = SalesforceSettings(login_url=sandbox.url, api_version="62.0", currency="EUR")
    tokens = OAuth2ClientCredentials(
        OAuth2Settings(provider="salesforce", token_url=settings.token_url, default_lifetime_seconds=900),
        lambda: ClientCredentials("consumer", "consumer-secret"),
        InMemoryTokenStore(),
        retry=RetryPolicy(sleep=lambda _s: None),
    )
    return SalesforceClient(settings, tokens, retry=RetryPolicy(attempts=4, sleep=lambda _s: None))


def test_reads_by_id_map_to_canonical_records(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    account = sandbox.create("Account", {"Name": "Acme", "Website": "https://www.acme.example/about"})
    contact = sandbox.create(
        "Contact", {"LastName": "Lovelace", "Email": "ada@acme.example", "AccountId": account, "MailingCountry": "GB"}
    )
    deal = sandbox.create(
        "Opportunity",
        {
            "Name": "Pumps",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "Amount": 1200.5,
            "AccountId": account,
        },
    )

    [found] = client.contacts([contact])
    assert (found.contact_id, found.last_name, found.account_id) == (contact, "Lovelace", account)
    assert found.address is not None and found.address.country == "GB"
    assert [a.domain for a in client.accounts([account])] == ["acme.example"]
    [opportunity] = client.opportunities([deal])
    assert str(opportunity.amount) == "1200.5" and opportunity.currency == "EUR"
    assert client.get_records("Contact", [contact, "003SB0000000000999"], ["Id"])[1] is None


def test_query_follows_next_records_url(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    for n in range(5):
        sandbox.create("Contact", {"LastName": f"L{n}"})
    names = [r["LastName"] for r in client.query("SELECT Id, LastName FROM Contact ORDER BY LastName")]
    assert names == ["L0", "L1", "L2", "L3", "L4"]
    query_more = sum(count for key, count in sandbox.requests.items() if "/query/01g" in key)
    assert query_more == 2  # pages of 2: first page from /query, two more from nextRecordsUrl


def test_upsert_in_batches_of_200_with_per_record_errors(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    existing = sandbox.create("Contact", {"LastName": "Old", "Syncline_Id__c": "c-0"})
    records = [{"Syncline_Id__c": f"c-{n}", "LastName": f"N{n}"} for n in range(250)]
    records[7] = {"Syncline_Id__c": "c-7", "Email": "no-last-name@example.com"}

    results = client.upsert("Contact", records)

    assert sandbox.requests[COLLECTIONS] == 2
    assert len(results) == 250 and [r.key for r in results[:3]] == ["c-0", "c-1", "c-2"]
    assert results[0].success and results[0].created is False and results[0].id == existing
    assert results[1].success and results[1].created is True
    assert not results[7].success and results[7].errors[0].status_code == "REQUIRED_FIELD_MISSING"
    assert results[7].errors[0].fields == ("LastName",)
    assert sum(r.success for r in results) == 249
    assert sandbox.record("Contact", existing)["LastName"] == "N0"


def test_our_writes_come_back_as_echoes_and_user_edits_do_not(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    [result] = client.upsert("Contact", [{"Syncline_Id__c": "c-1", "LastName": "Ours"}])
    assert result.id is not None
    sandbox.edit("Contact", result.id, {"Phone": "+44 20 0000"})  # a user in Salesforce

    events = sandbox.change_events
    assert (
        events[0]["data"]["payload"]["ChangeEventHeader"]["changeOrigin"]
        == "com/salesforce/api/rest/62.0;client=syncline"
    )
    batch = notices_from_cdc(events, observed_at=NOW)
    assert batch.echoes == 1
    assert [(n.entity, n.key, n.operation) for n in batch.notices] == [("contact", result.id, "upsert")]


def test_an_expired_session_refreshes_once_and_retries(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    contact = sandbox.create("Contact", {"LastName": "X"})
    client.contacts([contact])
    sandbox.tokens.expire_all()

    assert [c.contact_id for c in client.contacts([contact])] == [contact]
    assert sandbox.token_requests == 2
    assert sandbox.requests["GET /services/data/v62.0/composite/sobjects/Contact"] == 3


@pytest.mark.parametrize(
    ("kind", "options"), [("status", {"status": 503}), ("status", {"status": 500}), ("rate_limit", {}), ("drop", {})]
)
def test_transient_failures_are_retried(
    client: SalesforceClient, sandbox: SalesforceSandbox, kind: str, options: dict[str, int]
) -> None:
    contact = sandbox.create("Contact", {"LastName": "X"})
    client.contacts([contact])
    sandbox.faults.add(kind, times=2, path=r"^/services/data/", **options)

    assert len(client.contacts([contact])) == 1
    assert client.api.retries == 2


def test_a_bad_request_is_not_retried(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    with pytest.raises(ApiError) as failure:
        client.upsert("Contact", [{"Syncline_Id__c": "c-1", "LastName": "X", "NoSuchField__c": 1}])
    assert failure.value.status == 400 and not failure.value.retryable
    assert failure.value.reason.startswith("INVALID_FIELD")
    assert sandbox.requests[COLLECTIONS] == 1
    assert client.api.retries == 0


def test_bad_client_credentials_fail_without_retry(sandbox: SalesforceSandbox) -> None:
    settings = SalesforceSettings(login_url=sandbox.url)
    tokens = OAuth2ClientCredentials(
        OAuth2Settings(provider="salesforce", token_url=settings.token_url),
        lambda: ClientCredentials("consumer", "wrong"),
        InMemoryTokenStore(),
        retry=RetryPolicy(sleep=lambda _s: None),
    )
    with pytest.raises(ApiError) as failure:
        SalesforceClient(settings, tokens).contacts(["003SB0000000000001"])
    assert failure.value.status == 400 and "invalid client credentials" in failure.value.reason
    assert sandbox.token_requests == 1
