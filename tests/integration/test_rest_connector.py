"""The generic REST connector against the configurable REST sandbox over real HTTP: the four pagination styles,
API-key / bearer / OAuth2 auth, mapping on reads and writes, retries and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.rest import RestConnector, RestSystemConfig
from syncline.local.sandboxes.generic_rest import GenericRestSandbox

API_KEY = "pos-key-123"
FIELDS = {
    "sku": "id",
    "title": "name",
    "price": {"source": "price.amount", "transform": "decimal"},
    "currency": {"source": "price.currency", "transform": "upper"},
    "on_hand": {"source": "stock.on_hand", "transform": "int"},
}


def item(n: int) -> dict[str, Any]:
    return {
        "id": f"SKU-{n:03d}",
        "name": f"Item {n}",
        "price": {"amount": f"{n}.25", "currency": "usd"},
        "stock": {"on_hand": n},
    }


def entity(path: str, pagination: dict[str, Any], records_path: str | None) -> dict[str, Any]:
    return {
        "key_field": "sku",
        "fields": FIELDS,
        "list": {"path": path, "records_path": records_path},
        "get": {"path": f"{path}/{{key}}", "record_path": "data"},
        "upsert": {"path": f"{path}/{{key}}", "method": "PUT", "record_path": "data", "body_path": "item"},
        "pagination": pagination,
    }


def system(url: str, auth: dict[str, Any] | None = None) -> RestSystemConfig:
    return RestSystemConfig.model_validate(
        {
            "system": "pos",
            "base_url": f"{url}/api",
            "auth": auth or {"kind": "api_key", "header": "X-API-Key"},
            "entities": {
                "page": entity("/items", {"style": "page", "size_param": "per_page", "page_size": 10}, "data"),
                "page_total": entity(
                    "/items",
                    {"style": "page", "size_param": "per_page", "page_size": 10, "total_path": "meta.total"},
                    "data",
                ),
                "offset": entity("/stock", {"style": "offset", "page_size": 10, "total_path": "total"}, "items"),
                "cursor": entity(
                    "/orders", {"style": "cursor", "page_size": 10, "cursor_path": "next.cursor"}, "results"
                ),
                "link": entity("/customers", {"style": "link", "page_size": 10}, None),
                "none": entity("/locations", {"style": "none"}, None),
            },
        }
    )


@pytest.fixture
def sandbox() -> Iterator[GenericRestSandbox]:
    with GenericRestSandbox(api_keys=[API_KEY]) as server:
        server.add_collection("items", [item(n) for n in range(95)], pagination="page", wrap="item", required=("name",))
        server.add_collection("stock", [item(n) for n in range(100)], pagination="offset")
        server.add_collection("orders", [item(n) for n in range(95)], pagination="cursor")
        server.add_collection("customers", [item(n) for n in range(95)], pagination="link")
        server.add_collection("locations", [item(n) for n in range(3)])
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connector(sandbox: GenericRestSandbox, sleeps: list[float]) -> Iterator[RestConnector]:
    rest = RestConnector(system(sandbox.url), credential=lambda: API_KEY, retry=RetryPolicy(sleep=sleeps.append))
    yield rest
    rest.close()


@pytest.mark.parametrize(
    ("name", "path", "total", "requests"),
    [
        ("page", "/api/items", 95, 10),  # stops at the short page
        ("offset", "/api/stock", 100, 10),  # stops at the declared total, no empty page
        ("cursor", "/api/orders", 95, 10),
        ("link", "/api/customers", 95, 10),
        ("none", "/api/locations", 3, 1),
    ],
)
def test_every_pagination_style_lists_each_record_once(
    connector: RestConnector, sandbox: GenericRestSandbox, name: str, path: str, total: int, requests: int
) -> None:
    records = list(connector.records(name))

    skus = [r["sku"] for r in records]
    assert len(skus) == len(set(skus)) == total
    assert sandbox.requests[f"GET {path}"] == requests
    assert next(r for r in records if r["sku"] == "SKU-002") == {
        "sku": "SKU-002",
        "title": "Item 2",
        "price": Decimal("2.25"),
        "currency": "USD",
        "on_hand": 2,
    }


def test_page_numbers_without_a_total_need_one_empty_page_on_an_exact_multiple(
    connector: RestConnector, sandbox: GenericRestSandbox
) -> None:
    sandbox.add_collection("items", [item(n) for n in range(100)], pagination="page")

    assert len(list(connector.records("page"))) == 100
    assert sandbox.requests["GET /api/items"] == 11
    assert len(list(connector.records("page_total"))) == 100
    assert sandbox.requests["GET /api/items"] == 21  # with meta.total: ten pages, no empty one


def test_a_foreign_next_link_is_refused_and_never_followed(sleeps: list[float]) -> None:
    with GenericRestSandbox() as elsewhere, GenericRestSandbox(api_keys=[API_KEY], link_base=elsewhere.url) as server:
        server.add_collection("customers", [item(n) for n in range(30)], pagination="link")
        rest = RestConnector(system(server.url), credential=lambda: API_KEY, retry=RetryPolicy(sleep=sleeps.append))

        with pytest.raises(ApiError, match="another origin"):
            list(rest.records("link"))

        assert server.requests["GET /api/customers"] == 1
        assert sum(elsewhere.requests.values()) == 0  # the API key never went there


def test_get_and_upsert_through_key_templates_and_a_wrapped_body(
    connector: RestConnector, sandbox: GenericRestSandbox
) -> None:
    written = connector.upsert(
        "page", {"sku": "A/1 B", "title": "Odd key", "price": Decimal("0.10"), "currency": "eur", "on_hand": 4}
    )

    stored = sandbox.collections["items"].records["A/1 B"]
    assert stored == {
        "id": "A/1 B",
        "name": "Odd key",
        "price": {"amount": "0.10", "currency": "EUR"},
        "stock": {"on_hand": 4},
    }
    assert sandbox.requests["PUT /api/items/A%2F1%20B"] == 1
    assert written == {"sku": "A/1 B", "title": "Odd key", "price": Decimal("0.10"), "currency": "EUR", "on_hand": 4}
    assert connector.get("page", "A/1 B") == written
    assert connector.get("page", "missing") is None


def test_a_refused_write_is_not_retried(connector: RestConnector, sandbox: GenericRestSandbox) -> None:
    with pytest.raises(ApiError) as raised:
        connector.upsert("page", {"sku": "NEW-1", "title": None, "on_hand": 1})

    assert raised.value.status == 422 and not raised.value.retryable
    assert sandbox.requests["PUT /api/items/NEW-1"] == 1
    assert "NEW-1" not in sandbox.collections["items"].records


@pytest.mark.parametrize(("kind", "options"), [("status", {"status": 503}), ("rate_limit", {}), ("drop", {})])
def test_transient_failures_are_retried(
    connector: RestConnector, sandbox: GenericRestSandbox, sleeps: list[float], kind: str, options: dict[str, Any]
) -> None:
    sandbox.faults.add(kind, times=2, path=r"^/api/stock$", **options)

    assert len(list(connector.records("offset"))) == 100

    assert sandbox.faults.injected[kind] == 2
    assert connector.http.retries == 2
    if kind == "rate_limit":
        assert sleeps == [1.0, 1.0]  # the sandbox's Retry-After: 1


def test_a_wrong_api_key_is_refused_once(sandbox: GenericRestSandbox, sleeps: list[float]) -> None:
    rest = RestConnector(system(sandbox.url), credential=lambda: "wrong-key", retry=RetryPolicy(sleep=sleeps.append))

    with pytest.raises(ApiError) as raised:
        rest.get("page", "SKU-001")

    assert raised.value.status == 401 and "wrong-key" not in str(raised.value)
    assert sandbox.requests["GET /api/items/SKU-001"] == 1


def test_a_bearer_token_callable_is_asked_on_every_request(sleeps: list[float]) -> None:
    with GenericRestSandbox(bearer_tokens=["t1", "t2"]) as server:
        server.add_collection("locations", [item(1)])
        issued = iter(["t1", "t2", "revoked"])
        rest = RestConnector(
            system(server.url, {"kind": "bearer"}),
            credential=lambda: next(issued),
            retry=RetryPolicy(sleep=sleeps.append),
        )

        assert len(list(rest.records("none"))) == 1
        assert rest.get("none", "SKU-001") is not None
        with pytest.raises(ApiError) as raised:
            rest.get("none", "SKU-001")
        assert raised.value.status == 401


def test_an_oauth2_token_provider_plugs_in_and_is_refreshed_once_on_a_401(sleeps: list[float]) -> None:
    with GenericRestSandbox() as server:
        server.tokens.clients["syncline"] = "client-secret"
        server.add_collection("locations", [item(1), item(2)])

        class TokenProvider:  # what connectors/oauth2.py provides: a cached token and an invalidate hook
            def __init__(self) -> None:
                self.cached: str | None = None
                self.fetched = 0

            def __call__(self) -> str:
                if self.cached is None:
                    answer = httpx.post(
                        f"{server.url}/oauth/token",
                        data={
                            "grant_type": "client_credentials",
                            "client_id": "syncline",
                            "client_secret": "client-secret",
                        },
                    )
                    self.cached = str(answer.json()["access_token"])
                    self.fetched += 1
                return self.cached

            def invalidate(self) -> None:
                self.cached = None

        provider = TokenProvider()
        rest = RestConnector(
            system(server.url, {"kind": "oauth2"}),
            credential=provider,
            on_unauthorized=provider.invalidate,
            retry=RetryPolicy(sleep=sleeps.append),
        )

        assert len(list(rest.records("none"))) == 2
        server.tokens.expire_all()
        assert len(list(rest.records("none"))) == 2

        assert provider.fetched == 2
        assert server.requests["GET /api/locations"] == 3  # one refused with the expired token, retried once


def test_a_cursor_that_does_not_advance_stops_the_list_instead_of_looping(
    connector: RestConnector, sandbox: GenericRestSandbox
) -> None:
    stuck = sandbox._cursor_page

    def same_cursor(request: Any, records: list[dict[str, Any]], size: int) -> Any:
        reply = stuck(request, records, size)
        reply.body["next"]["cursor"] = "again"
        sandbox._cursors["again"] = 10
        return reply

    sandbox._cursor_page = same_cursor  # type: ignore[method-assign]

    with pytest.raises(ApiError, match="does not advance"):
        list(connector.records("cursor"))
    assert sandbox.requests["GET /api/orders"] == 2
