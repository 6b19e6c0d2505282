"""`syncline map` against the local stack's moto server: set, list, refuse a second owner, unset."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncline.cli import main
from syncline.local.stack import LocalStack


def test_map_set_list_conflict_and_unset(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    target = ["--endpoint-url", stack.moto.endpoint]
    gid = "gid://shopify/ProductVariant/9007199254740993"
    assert main(["map", "set", "variant", "A-100", "shopify-store-a", gid, *target]) == 0
    assert main(["map", "set", "variant", "A-100", "sage300", "A-100", *target]) == 0
    capsys.readouterr()

    assert main(["map", "list", "variant", "--json", *target]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert rows == [{"key": "A-100", "sage300": "A-100", "shopify-store-a": gid, "storefront": "-"}]

    assert main(["map", "set", "variant", "B-200", "shopify-store-a", gid, *target]) == 4
    assert "mapped to A-100; unset it there first" in capsys.readouterr().err

    assert main(["map", "unset", "variant", "A-100", "sage300", *target]) == 0
    assert main(["map", "unset", "variant", "A-100", "sage300", *target]) == 3  # nothing left to detach
