"""Salesforce REST: contacts, accounts and opportunities, read and upserted in batches, and Change Data Capture.

- Tokens: OAuth2 client credentials at ``{login_url}/services/oauth2/token``; the response names the org's
  ``instance_url``, which every data call uses. It sends no ``expires_in``: the lifetime is configured
  (``OAuth2Settings.default_lifetime_seconds``, below the org's session timeout) and a 401
  (``INVALID_SESSION_ID``) refreshes once and retries once.
- Reads: sObject Collections ``GET composite/sobjects/{type}?ids=&fields=`` (up to 200 ids a call) and SOQL
  ``query?q=`` following ``nextRecordsUrl``.
- Writes: sObject Collections upsert ``PATCH composite/sobjects/{type}/{externalIdField}`` with ``allOrNone``
  false, at most 200 records a call; every record's result (``success``, ``created``, ``errors``) is returned.
  Writes send ``Sforce-Call-Options: client=syncline``, so their change events carry
  ``changeOrigin: com/salesforce/api/rest/<version>;client=syncline`` and are recognised as echoes.
- The API version is pinned by configuration, never discovered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from syncline.canonical.entities import Account, Address, Contact, Deal
from syncline.connectors.http import HttpApi, RetryPolicy
from syncline.connectors.oauth2 import OAuth2ClientCredentials
from syncline.contacts import contact_key, contact_values
from syncline.models import ChangeNotice
from syncline.twoway import Copy, StaleWrite

logger = logging.getLogger(__name__)

SERVICE = "salesforce"
SOURCE_SYSTEM = "salesforce"
MAX_COLLECTION = 200

# Salesforce object -> canonical entity name on ChangeNotices.
ENTITIES: dict[str, str] = {"Contact": "contact", "Account": "account", "Opportunity": "deal"}

CONTACT_FIELDS = (
    "Id",
    "Email",
    "FirstName",
    "LastName",
    "Phone",
    "AccountId",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "HasOptedOutOfEmail",
    "LastModifiedDate",
)
ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "Website",
    "Industry",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "LastModifiedDate",
)
OPPORTUNITY_FIELDS = ("Id", "Name", "StageName", "Amount", "CloseDate", "AccountId", "LastModifiedDate")


class SalesforceSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    login_url: str = Field(min_length=1, description="My Domain URL; the token endpoint is under it")
    api_version: str = Field("62.0", pattern=r"^\d{2,3}\.0$", description="pinned REST API version")
    call_client: str = Field(
        "syncline", pattern=r"^[A-Za-z0-9_-]{1,40}$", description="client id in Sforce-Call-Options"
    )
    external_id_field: str = Field("Syncline_Id__c", pattern=r"^\w+$", description="external id field for upserts")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="org currency (single-currency orgs)")

    @property
    def token_url(self) -> str:
        return f"{self.login_url.rstrip('/')}/services/oauth2/token"


@dataclass(frozen=True)
class RecordError:
    status_code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class SaveResult:
    """One record's outcome in a collection write, in request order (``key``: its external id or Id)."""

    key: str
    success: bool
    id: str | None = None
    created: bool | None = None
    errors: tuple[RecordError, ...] = ()


def parse_save_results(keys: Sequence[str], body: Any) -> list[SaveResult]:
    """Salesforce's SaveResult/UpsertResult list, matched to the request's keys by position."""
    if not isinstance(body, list) or len(body) != len(keys):
        raise ValueError("sObject Collections answered a result list that does not match the request")
    results = []
    for key, result in zip(keys, body, strict=True):
        errors = tuple(
            RecordError(
                str(error.get("statusCode", "")), str(error.get("message", "")), tuple(error.get("fields") or ())
            )
            for error in result.get("errors") or ()
        )
        results.append(SaveResult(key, bool(result.get("success")), result.get("id"), result.get("created"), errors))
    return results


class SalesforceClient:
    """Salesforce REST over the shared ``HttpApi`` (retries, one refresh and one retry on 401)."""

    def __init__(
        self,
        settings: SalesforceSettings,
        tokens: OAuth2ClientCredentials,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._tokens = tokens
        self.api = HttpApi(
            SERVICE,
            settings.login_url,
            client=client,
            retry=retry,
            headers={"Accept": "application/json"},
            auth=tokens.headers,
            on_unauthorized=tokens.on_unauthorized,
        )

    def _data_url(self, path: str) -> str:
        instance = self._tokens.token().extra.get("instance_url") or self.settings.login_url
        return f"{instance.rstrip('/')}/services/data/v{self.settings.api_version}/{path.lstrip('/')}"

    # --- reads ----------------------------------------------------------------------------------------

    def get_records(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any] | None]:
        """Records by id, in the order asked (None where Salesforce has none), 200 ids per call."""
        records: list[dict[str, Any] | None] = []
        for chunk in _chunks(ids, MAX_COLLECTION):
            body = self.api.json(
                "GET",
                self._data_url(f"composite/sobjects/{sobject}"),
                params={"ids": ",".join(chunk), "fields": ",".join(fields)},
            )
            records.extend(body or [None] * len(chunk))
        return records

    def query(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every record a SOQL query returns, following ``nextRecordsUrl`` until ``done``."""
        body = self.api.json("GET", self._data_url("query"), params={"q": soql})
        while True:
            yield from body.get("records", [])
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            instance = self._tokens.token().extra.get("instance_url") or self.settings.login_url
            body = self.api.json("GET", f"{instance.rstrip('/')}{next_url}")

    def contacts(self, ids: Sequence[str]) -> list[Contact]:
        return [contact_from_sobject(r) for r in self.get_records("Contact", ids, CONTACT_FIELDS) if r]

    def accounts(self, ids: Sequence[str]) -> list[Account]:
        return [account_from_sobject(r) for r in self.get_records("Account", ids, ACCOUNT_FIELDS) if r]

    def opportunities(self, ids: Sequence[str]) -> list[Deal]:
        currency = self.settings.currency
        return [
            deal_from_sobject(r, currency=currency)
            for r in self.get_records("Opportunity", ids, OPPORTUNITY_FIELDS)
            if r
        ]

    # --- writes ---------------------------------------------------------------------------------------

    def upsert(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, external_id_field: str | None = None
    ) -> list[SaveResult]:
        """Create or update by external id, 200 per call, ``allOrNone`` false: one bad record fails alone."""
        id_field = external_id_field or self.settings.external_id_field
        keys = [str(record[id_field]) for record in records]  # KeyError: a record without its external id
        return self._collection_write(f"composite/sobjects/{sobject}/{id_field}", sobject, records, keys)

    def update(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[SaveResult]:
        """Update records by Salesforce ``Id``, 200 per call, ``allOrNone`` false."""
        keys = [str(record["Id"]) for record in records]
        return self._collection_write("composite/sobjects", sobject, records, keys)

    def _collection_write(
        self, path: str, sobject: str, records: Sequence[Mapping[str, Any]], keys: Sequence[str]
    ) -> list[SaveResult]:
        results: list[SaveResult] = []
        for start in range(0, len(records), MAX_COLLECTION):
            chunk = records[start : start + MAX_COLLECTION]
            body = {
                "allOrNone": False,
                "records": [{"attributes": {"type": sobject}, **dict(record)} for record in chunk],
            }
            answer = self.api.json(
                "PATCH",
                self._data_url(path),
                json=body,
                headers={"Sforce-Call-Options": f"client={self.settings.call_client}"},
            )
            results.extend(parse_save_results(keys[start : start + MAX_COLLECTION], answer))
        failed = sum(not result.success for result in results)
        if failed:
            logger.warning("salesforce records refused", extra={"sobject": sobject, "failed": failed})
        return results

    def close(self) -> None:
        self.api.close()


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- mapping ------------------------------------------------------------------------------------------


def _when(value: Any) -> datetime:
    """A Salesforce datetime (``2024-05-01T10:00:00.000+0000``) as an aware datetime."""
    text = str(value)
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _country(value: Any) -> str | None:
    text = str(value or "").strip()
    return text.upper() if len(text) == 2 and text.isalpha() else None  # free-text country names are dropped


def _address(record: Mapping[str, Any], prefix: str) -> Address | None:
    address = Address(
        line1=record.get(f"{prefix}Street"),
        city=record.get(f"{prefix}City"),
        region=record.get(f"{prefix}State"),
        postal_code=record.get(f"{prefix}PostalCode"),
        country=_country(record.get(f"{prefix}CountryCode") or record.get(f"{prefix}Country")),
    )
    return address if address != Address() else None


def contact_from_sobject(record: Mapping[str, Any]) -> Contact:
    opted_out = record.get("HasOptedOutOfEmail")
    return Contact(
        contact_id=record["Id"],
        email=record.get("Email"),
        first_name=record.get("FirstName"),
        last_name=record.get("LastName"),
        phone=record.get("Phone"),
        account_id=record.get("AccountId"),
        address=_address(record, "Mailing"),
        marketing_opt_in=None if opted_out is None else not opted_out,
        updated_at=_when(record["LastModifiedDate"]),
    )


def account_from_sobject(record: Mapping[str, Any]) -> Account:
    website = record.get("Website")
    domain = str(website).split("://", 1)[-1].split("/", 1)[0].removeprefix("www.") if website else None
    return Account(
        account_id=record["Id"],
        name=record["Name"],
        domain=domain or None,
        industry=record.get("Industry"),
        address=_address(record, "Billing"),
        updated_at=_when(record["LastModifiedDate"]),
    )


def deal_from_sobject(record: Mapping[str, Any], *, currency: str | None = None) -> Deal:
    amount = record.get("Amount")
    close = record.get("CloseDate")
    return Deal(
        deal_id=record["Id"],
        name=record["Name"],
        stage=record["StageName"],
        amount=Decimal(str(amount)) if amount is not None else None,
        currency=record.get("CurrencyIsoCode") or currency,
        close_date=date.fromisoformat(close) if close else None,
        account_id=record.get("AccountId"),
        updated_at=_when(record["LastModifiedDate"]),
    )


def contact_to_sobject(contact: Contact, *, external_id_field: str) -> dict[str, Any]:
    """The Contact fields Syncline owns, keyed by the external id (the canonical contact id)."""
    fields: dict[str, Any] = {
        external_id_field: contact.contact_id,
        "Email": contact.email,
        "FirstName": contact.first_name,
        "LastName": contact.last_name,
        "Phone": contact.phone,
    }
    if contact.marketing_opt_in is not None:
        fields["HasOptedOutOfEmail"] = not contact.marketing_opt_in
    if contact.address is not None:
        fields |= {
            "MailingStreet": contact.address.line1,
            "MailingCity": contact.address.city,
            "MailingState": contact.address.region,
            "MailingPostalCode": contact.address.postal_code,
            "MailingCountry": contact.address.country,
        }
    return fields


def account_to_sobject(account: Account, *, external_id_field: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        external_id_field: account.account_id,
        "Name": account.name,
        "Website": account.domain,
        "Industry": account.industry,
    }
    if account.address is not None:
        fields |= {
            "BillingStreet": account.address.line1,
            "BillingCity": account.address.city,
            "BillingState": account.address.region,
            "BillingPostalCode": account.address.postal_code,
            "BillingCountry": account.address.country,
        }
    return fields


def deal_to_sobject(deal: Deal, *, external_id_field: str) -> dict[str, Any]:
    return {
        external_id_field: deal.deal_id,
        "Name": deal.name,
        "StageName": deal.stage,
        "Amount": float(deal.amount) if deal.amount is not None else None,
        "CloseDate": deal.close_date.isoformat() if deal.close_date else None,
    }


# --- Change Data Capture ------------------------------------------------------------------------------

Operation = Literal["upsert", "delete"]


@dataclass(frozen=True)
class ChangeEvent:
    """One CDC event's header, and whether Syncline caused it (``echo``)."""

    entity_name: str
    change_type: str
    record_ids: tuple[str, ...]
    changed_fields: tuple[str, ...]
    commit_timestamp: datetime | None
    change_origin: str
    commit_number: int | None = None
    replay_id: str | None = None
    transaction_key: str | None = None
    sequence_number: int | None = None
    echo: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> bool:
        """A gap event: Salesforce could not send the change itself; only a fresh read tells what it is."""
        return self.change_type.startswith("GAP_")

    @property
    def wildcard(self) -> bool:
        """Record ids like ``001*`` (field-type conversions): no key to notify, a reconcile is needed."""
        return any(record_id.endswith("*") for record_id in self.record_ids)

    @property
    def operation(self) -> Operation:
        return "delete" if self.change_type.removeprefix("GAP_") == "DELETE" else "upsert"

    def notices(
        self, observed_at: datetime, entities: Mapping[str, str] = ENTITIES, *, source_system: str = SOURCE_SYSTEM
    ) -> list[ChangeNotice]:
        """One notice per record id (never for wildcards); the worker fetches each record fresh."""
        entity = entities.get(self.entity_name, self.entity_name.lower())
        delivery = self.replay_id or (
            f"{self.transaction_key}:{self.sequence_number}" if self.transaction_key is not None else None
        )
        return [
            ChangeNotice(
                source_system=source_system,
                entity=entity,
                key=record_id,
                operation=self.operation,
                observed_at=observed_at,
                source_version=self.commit_number,
                delivery_id=f"{delivery}:{record_id}" if delivery else None,
                triggered_at=self.commit_timestamp,
            )
            for record_id in self.record_ids
            if not record_id.endswith("*")
        ]


def is_echo(change_origin: str | None, client: str = "syncline") -> bool:
    """Whether ``changeOrigin`` (``com/salesforce/api/rest/62.0;client=syncline``) names our client id exactly."""
    for part in (change_origin or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "client" and value == client:
            return True
    return False


def parse_change_event(message: Mapping[str, Any], *, client: str = "syncline") -> ChangeEvent:
    """A CDC message as CometD delivers it (``{"data": {"payload", "event"}, "channel"}``) or its bare payload.

    Raises ``ValueError`` on a message without a ``ChangeEventHeader``. Pub/Sub API bitmaps in
    ``changedFields`` (``0x...``) are kept as they come: only the Avro schema can name them.
    """
    if not isinstance(message, Mapping):
        raise ValueError("not a Change Data Capture event: no ChangeEventHeader")
    try:
        return _parse_change_event(message, client)
    except (TypeError, AttributeError, OverflowError, OSError) as exc:  # a header field of the wrong type or range
        raise ValueError(f"malformed ChangeEventHeader: {type(exc).__name__}: {exc}") from None


def _parse_change_event(message: Mapping[str, Any], client: str) -> ChangeEvent:
    data = message.get("data") if isinstance(message.get("data"), Mapping) else None
    payload = data.get("payload") if data is not None else message.get("payload", message)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("ChangeEventHeader"), Mapping):
        raise ValueError("not a Change Data Capture event: no ChangeEventHeader")
    header = payload["ChangeEventHeader"]
    entity_name, change_type = header.get("entityName"), header.get("changeType")
    if not isinstance(entity_name, str) or not isinstance(change_type, str) or not entity_name or not change_type:
        raise ValueError("ChangeEventHeader lacks entityName or changeType")
    record_ids = header.get("recordIds") or []
    if isinstance(record_ids, str):
        record_ids = [record_ids]
    commit = header.get("commitTimestamp")
    replay = (data or {}).get("event", {}).get("replayId") if data is not None else message.get("replayId")
    origin = str(header.get("changeOrigin") or "")
    return ChangeEvent(
        entity_name=entity_name,
        change_type=change_type.upper(),
        record_ids=tuple(str(record_id) for record_id in record_ids),
        changed_fields=tuple(str(name) for name in header.get("changedFields") or ()),
        commit_timestamp=datetime.fromtimestamp(int(commit) / 1000, tz=UTC) if commit is not None else None,
        change_origin=origin,
        commit_number=_int_or_none(header.get("commitNumber")),
        replay_id=str(replay) if replay is not None else None,
        transaction_key=header.get("transactionKey"),
        sequence_number=_int_or_none(header.get("sequenceNumber")),
        echo=is_echo(origin, client),
        fields={name: value for name, value in payload.items() if name != "ChangeEventHeader"},
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class CdcBatch:
    """Notices from a batch of CDC messages, with what was set aside and why."""

    notices: list[ChangeNotice] = field(default_factory=list)
    echoes: int = 0
    unknown_entities: int = 0
    needs_reconcile: list[str] = field(default_factory=list)  # entity names with wildcard record ids


def notices_from_cdc(
    messages: Iterable[Mapping[str, Any]],
    *,
    observed_at: datetime,
    client: str = "syncline",
    entities: Mapping[str, str] = ENTITIES,
    source_system: str = SOURCE_SYSTEM,
) -> CdcBatch:
    """ChangeNotices for the events of ``entities``, dropping Syncline's own writes (their echoes)."""
    batch = CdcBatch()
    for message in messages:
        event = parse_change_event(message, client=client)
        if event.entity_name not in entities:
            batch.unknown_entities += 1
            continue
        if event.echo:
            batch.echoes += 1
            continue
        if event.wildcard:
            batch.needs_reconcile.append(event.entity_name)
        batch.notices.extend(event.notices(observed_at, entities, source_system=source_system))
    return batch


# --- two-way contacts ---------------------------------------------------------------------------------

# The contact fields a Salesforce Contact stores (``syncline.contacts.SYNCED_FIELDS`` less ``lifecycle_stage``,
# which a standard Contact has no field for); a pair with the OMS carries only these.
CONTACT_SYNCED_FIELDS = ("email", "first_name", "last_name", "phone", "address")
_MAILING = {
    "line1": "MailingStreet",
    "city": "MailingCity",
    "region": "MailingState",
    "postal_code": "MailingPostalCode",
}


class ContactRefused(RuntimeError):
    """Salesforce refused the contact itself (a record error in the collection result): no retry changes that."""

    retryable = False


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslashes and single quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class SalesforceContactsByEmail:
    """``syncline.twoway.RecordSystem`` over Salesforce contacts keyed by e-mail (lower-cased), the key they share
    with OMS customers and HubSpot contacts (``syncline.contacts``).

    A read is one SOQL query on ``Email`` (SOQL compares text case-insensitively); two contacts with the address
    are refused rather than guessed between. The version is ``SystemModstamp`` in epoch milliseconds. Salesforce
    has no compare-and-swap on a record: ``write`` re-reads first and refuses (``StaleWrite``) when the contact
    moved past ``expected_version``. An existing contact is updated by its ``Id``; a new one is upserted by the
    external id field (the e-mail), so a retried create never makes a second contact. Writes carry
    ``Sforce-Call-Options: client=<call_client>``: their change events are recognised as echoes.
    """

    client: SalesforceClient
    name: str = "salesforce"
    synced_fields: tuple[str, ...] = CONTACT_SYNCED_FIELDS

    def read(self, key: str) -> Copy | None:
        found = self._find(key)
        return self._copy(found) if found is not None else None

    def _find(self, key: str) -> dict[str, Any] | None:
        fields = ", ".join((*CONTACT_FIELDS, "SystemModstamp"))
        rows = [
            row
            for row in self.client.query(f"SELECT {fields} FROM Contact WHERE Email = {soql_quote(key)}")
            if contact_key(row.get("Email")) == key
        ]
        if len(rows) > 1:
            raise ContactRefused(f"{self.name}: contacts {rows[0]['Id']} and {rows[1]['Id']} share the e-mail {key}")
        return rows[0] if rows else None

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        current = self._find(key)
        version = self._copy(current).version if current is not None else None
        if (current is None) != (expected_version is None) or version != expected_version:
            raise StaleWrite(f"{self.name}: contact {key} moved on before our write")
        wanted = contact_values({**values, "email": key})
        if not wanted["last_name"]:  # required on a Contact: refused here rather than made up (it would sync back)
            raise ContactRefused(f"{self.name}: contact {key} has no last name, which Salesforce requires")
        address = wanted.get("address") or {}
        fields: dict[str, Any] = {
            "Email": key,
            "FirstName": wanted["first_name"],
            "LastName": wanted["last_name"],
            "Phone": wanted["phone"],
            **{column: address.get(part) for part, column in _MAILING.items()},
        }
        id_field = self.client.settings.external_id_field
        if current is not None:
            results = self.client.update("Contact", [{"Id": current["Id"], **fields}])
        else:
            results = self.client.upsert("Contact", [{id_field: key, **fields}])
        if not results or not results[0].success:
            first = results[0].errors[0] if results and results[0].errors else None
            reason = f"{first.status_code}: {first.message}" if first else "no result"
            raise ContactRefused(f"{self.name}: contact {key} refused: {reason}"[:500])
        stored = self.read(key)
        if stored is None:
            raise StaleWrite(f"{self.name}: contact {key} is gone after our write")
        return stored

    def iter_copies(self, page_size: int = 500) -> Iterator[list[tuple[str, Copy]]]:
        """Every contact with an e-mail, keyed by it, in pages of ``page_size`` (reconcile's full compare): one SOQL
        query in ``Id`` order, Salesforce paging it through ``nextRecordsUrl``. Where contacts share an address
        only the first is listed; a read of that key refuses the pair, as ``read`` does."""
        fields = ", ".join((*CONTACT_FIELDS, "SystemModstamp"))
        seen: set[str] = set()
        page: list[tuple[str, Copy]] = []
        for row in self.client.query(f"SELECT {fields} FROM Contact ORDER BY Id"):
            key = contact_key(row.get("Email"))
            if key is None or key in seen:
                continue
            seen.add(key)
            page.append((key, self._copy(row)))
            if len(page) >= page_size:
                yield page
                page = []
        yield page

    def key_of(self, record_id: str) -> str | None:
        """The pair's key (e-mail) of the contact a change event names by its Id; None if gone or without one."""
        records = self.client.get_records("Contact", [record_id], ("Id", "Email"))
        return next((contact_key(r.get("Email")) for r in records if r and r.get("Id") == record_id), None)

    def _copy(self, record: Mapping[str, Any]) -> Copy:
        contact = contact_from_sobject(record)
        values = contact_values(contact.model_dump(mode="json"))
        synced = {name: values[name] for name in self.synced_fields}
        stamp = _when(record.get("SystemModstamp") or record["LastModifiedDate"])
        return Copy(values=synced, changed_at=contact.updated_at, version=int(stamp.timestamp() * 1000))
