"""Contacts as two-way sync compares them across a CRM and the OMS: the same fields, in the same shape, both sides.

A pair of HubSpot contacts and OMS customers is keyed by the contact's e-mail, lower-cased (``contact_key``): the
one identity both systems hold. Only the fields both can store take part (``SYNCED_FIELDS``; of an address, the
parts HubSpot has properties for), so a copy read back equals what was written and an echo is recognised as one.
A changed e-mail is another key: the contact under the new address is a new record in the other system.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

SYNCED_FIELDS: Final = ("email", "first_name", "last_name", "phone", "lifecycle_stage", "address")
ADDRESS_PARTS: Final = ("line1", "city", "region", "postal_code")


def contact_key(email: str | None) -> str | None:
    """The pair's record key for an e-mail address (None when there is none to key on)."""
    key = (email or "").strip().lower()
    return key or None


def contact_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The synced fields of a contact (a ``Contact`` dump or a row), normalised: empty text is None, the e-mail is
    lower-cased, the address keeps its synced parts (None when it has none)."""
    values: dict[str, Any] = {}
    for name in SYNCED_FIELDS:
        value = record.get(name)
        if name == "address":
            parts = value if isinstance(value, Mapping) else {}
            address = {part: _text(parts.get(part)) for part in ADDRESS_PARTS}
            value = {part: text for part, text in address.items() if text is not None} or None
        elif name == "email":
            value = contact_key(value)
        else:
            value = _text(value)
        values[name] = value
    return values


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
