"""The shared OAuth2 access token of each provider in the single table: ``TK#{provider}``.

One item holds the token (value, fingerprint, expiry, non-secret extras) and the refresh lease
(``lease_owner``, ``lease_until``). Every change is a conditional UpdateItem:
- ``acquire``: set the lease if there is none, it expired, or it is already ours;
- ``save``: store the token and remove the lease in one write, only while the lease is still ours;
- ``invalidate``: remove the token only if its fingerprint is still the one that failed (compare-and-invalidate).
The token is a short-lived access token; the table's server-side encryption covers it at rest. ``expires_at`` is
the table's TTL attribute and only tidies items long after the token died; expiry is always checked in code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure
from syncline.connectors.oauth2 import AccessToken, TokenState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TIDY_AFTER_SECONDS = 86400


def token_key(provider: str) -> dict[str, Any]:
    return {"pk": {"S": f"TK#{provider}"}}


class DynamoTokenStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def load(self, provider: str) -> TokenState:
        item = self._client.get_item(TableName=self._table, Key=token_key(provider), ConsistentRead=True).get("Item")
        if not item:
            return TokenState()
        token = None
        if "access_token" in item:
            token = AccessToken(
                item["access_token"]["S"],
                expires_at=float(item["token_expires_at"]["N"]),
                issued_at=float(item.get("token_issued_at", {}).get("N", "0")),
                extra={name: value["S"] for name, value in item.get("token_extra", {}).get("M", {}).items()},
            )
        return TokenState(
            token,
            lease_owner=item["lease_owner"]["S"] if "lease_owner" in item else None,
            lease_until=float(item["lease_until"]["N"]) if "lease_until" in item else 0.0,
        )

    def acquire(self, provider: str, owner: str, *, now: float, until: float) -> bool:
        return self._update(
            provider,
            "SET lease_owner = :owner, lease_until = :until, expires_at = if_not_exists(expires_at, :tidy)",
            "attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :owner",
            {
                ":owner": {"S": owner},
                ":until": {"N": f"{until:.3f}"},
                ":now": {"N": f"{now:.3f}"},
                ":tidy": {"N": str(int(until) + TIDY_AFTER_SECONDS)},
            },
        )

    def save(self, provider: str, token: AccessToken, *, owner: str) -> bool:
        return self._update(
            provider,
            "SET access_token = :token, token_fp = :fp, token_expires_at = :exp, token_issued_at = :iat, "
            "token_extra = :extra, expires_at = :tidy REMOVE lease_owner, lease_until",
            "lease_owner = :owner",
            {
                ":token": {"S": token.value},
                ":fp": {"S": token.fingerprint},
                ":exp": {"N": f"{token.expires_at:.3f}"},
                ":iat": {"N": f"{token.issued_at:.3f}"},
                ":extra": {"M": {name: {"S": value} for name, value in token.extra.items()}},
                ":tidy": {"N": str(int(token.expires_at) + TIDY_AFTER_SECONDS)},
                ":owner": {"S": owner},
            },
        )

    def release(self, provider: str, owner: str) -> None:
        self._update(provider, "REMOVE lease_owner, lease_until", "lease_owner = :owner", {":owner": {"S": owner}})

    def invalidate(self, provider: str, fingerprint: str) -> bool:
        return self._update(
            provider,
            "REMOVE access_token, token_fp, token_expires_at, token_issued_at, token_extra",
            "token_fp = :fp",
            {":fp": {"S": fingerprint}},
        )

    def _update(self, provider: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=token_key(provider),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise  # botocore's message names the operation and the error code, never the attribute values
        return True
