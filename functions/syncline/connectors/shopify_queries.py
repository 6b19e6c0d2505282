"""The named GraphQL operations the Shopify connector sends, and what each is expected to cost.

Every document is a named operation so the sandbox (and Shopify's own logs) can tell them apart. The
expected cost follows Shopify's documented calculation closely enough to reserve points before a call:
an object costs 1, a connection costs 2 plus the number of nodes it asks for, and a mutation costs 10.
The server's ``requestedQueryCost`` is the truth; the bucket is reconciled with it after each call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LEVEL_FIELDS: Final = """
      id
      updatedAt
      quantities(names: $names) { name quantity updatedAt }
      item { id sku }
      location { id }
"""

INVENTORY_LEVEL: Final = f"""
query InventoryLevel($itemId: ID!, $locationId: ID!, $names: [String!]!) {{
  inventoryItem(id: $itemId) {{
    id
    inventoryLevel(locationId: $locationId) {{{LEVEL_FIELDS}    }}
  }}
}}
"""

LOCATION_INVENTORY_LEVELS: Final = f"""
query LocationInventoryLevels($locationId: ID!, $first: Int!, $after: String, $names: [String!]!) {{
  location(id: $locationId) {{
    id
    inventoryLevels(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{{LEVEL_FIELDS}      }}
    }}
  }}
}}
"""

INVENTORY_ITEM: Final = """
query InventoryItem($id: ID!) {
  inventoryItem(id: $id) { id sku tracked updatedAt variant { id product { id } } }
}
"""

VARIANT_FIELDS: Final = "id sku barcode title price compareAtPrice updatedAt inventoryItem { id }"

PRODUCT_FIELDS: Final = f"""
      id title descriptionHtml vendor status tags updatedAt
      variants(first: $variants) {{ nodes {{ {VARIANT_FIELDS} }} }}
"""

PRODUCT: Final = f"""
query Product($id: ID!, $variants: Int!) {{
  product(id: $id) {{{PRODUCT_FIELDS}  }}
}}
"""

PRODUCTS: Final = f"""
query Products($first: Int!, $after: String, $query: String, $variants: Int!) {{
  products(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{{PRODUCT_FIELDS}    }}
  }}
}}
"""

ORDER_FIELDS: Final = """
      id name email createdAt updatedAt cancelledAt displayFinancialStatus displayFulfillmentStatus
      currencyCode customer { id }
      totalPriceSet { shopMoney { amount currencyCode } }
      lineItems(first: $lines) {
        nodes { id sku quantity originalUnitPriceSet { shopMoney { amount currencyCode } } }
      }
"""

ORDER: Final = f"""
query Order($id: ID!, $lines: Int!) {{
  order(id: $id) {{{ORDER_FIELDS}  }}
}}
"""

ORDERS: Final = f"""
query Orders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{{ORDER_FIELDS}    }}
  }}
}}
"""

SHOP: Final = """
query Shop { shop { id name myshopifyDomain currencyCode } }
"""

USER_ERRORS: Final = "userErrors { field message code }"

# From 2026-01 the compare-and-swap value is ``changeFromQuantity`` on each quantity and a retry is made
# safe with the ``@idempotent`` directive (both mandatory from 2026-04).
INVENTORY_SET: Final = f"""
mutation InventorySet($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {{
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {{
    inventoryAdjustmentGroup {{ id createdAt reason changes {{ name delta quantityAfterChange item {{ id }} location {{ id }} }} }}
    {USER_ERRORS}
  }}
}}
"""

# Before 2026-01: ``compareQuantity`` on each quantity, no idempotency directive.
INVENTORY_SET_LEGACY: Final = f"""
mutation InventorySet($input: InventorySetQuantitiesInput!) {{
  inventorySetQuantities(input: $input) {{
    inventoryAdjustmentGroup {{ id createdAt reason changes {{ name delta quantityAfterChange item {{ id }} location {{ id }} }} }}
    {USER_ERRORS}
  }}
}}
"""

VARIANTS_BULK_UPDATE: Final = f"""
mutation VariantsBulkUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {{
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {{
    productVariants {{ {VARIANT_FIELDS} }}
    {USER_ERRORS}
  }}
}}
"""

PRODUCT_UPDATE: Final = f"""
mutation ProductUpdate($product: ProductUpdateInput!, $variants: Int!) {{
  productUpdate(product: $product) {{
    product {{{PRODUCT_FIELDS}    }}
    userErrors {{ field message }}
  }}
}}
"""

MUTATION_COST: Final = 10
FIRST_CHANGE_FROM_VERSION: Final = "2026-01"


def connection_cost(first: int, inner: int = 0) -> int:
    """Expected cost of a connection of ``first`` nodes, each with ``inner`` points of nested fields."""
    return 2 + first * (1 + inner)


def expected_cost(operation: str, variables: Mapping[str, object]) -> int:
    """Points to reserve before sending ``operation`` (the server's ``requestedQueryCost`` corrects it)."""
    first, variants, lines = (_int(variables.get(name)) for name in ("first", "variants", "lines"))
    costs = {
        "InventoryLevel": 2,
        "InventoryItem": 2,
        "Shop": 2,
        "LocationInventoryLevels": 1 + connection_cost(first, inner=2),
        "Product": 1 + connection_cost(variants, inner=1),
        "Products": connection_cost(first, inner=connection_cost(variants, inner=1)),
        "Order": 3 + connection_cost(lines, inner=2),
        "Orders": connection_cost(first, inner=3 + connection_cost(lines, inner=2)),
    }
    return costs.get(operation, MUTATION_COST)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# An order's fulfilment state: its fulfilment orders with what each line still has to ship, and the fulfilments
# made so far with their tracking (a shipment already recorded is recognised by its tracking number).
ORDER_FULFILLMENT: Final = """
query OrderFulfillment($id: ID!, $fulfillmentOrders: Int!, $lines: Int!) {
  order(id: $id) {
    id displayFulfillmentStatus
    fulfillmentOrders(first: $fulfillmentOrders) {
      nodes { id status lineItems(first: $lines) { nodes { id sku remainingQuantity } } }
    }
    fulfillments(first: 50) { id status trackingInfo(first: 5) { company number url } }
  }
}
"""

FULFILLMENT_CREATE: Final = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id status trackingInfo(first: 5) { company number url } }
    userErrors { field message }
  }
}
"""
