from syncline.identity import ExternalRecord, Identity, describe, match

SKUS = ["A-100", "A-200", "B-300"]
BARCODES = {"0001234567890": "A-200"}


def test_exact_sku_then_barcode_and_nothing_guessed() -> None:
    report = match(
        [
            ExternalRecord("shopify", "gid://shopify/ProductVariant/9007199254740993", sku="A-100"),
            ExternalRecord("shopify", "gid://shopify/ProductVariant/2", sku=None, barcode="0001234567890"),
            ExternalRecord("shopify", "gid://shopify/ProductVariant/3", sku="a-100 "),  # case differs: not guessed
            ExternalRecord("shopify", "gid://shopify/ProductVariant/4"),
        ],
        SKUS,
        BARCODES,
    )
    assert {k: r.id for k, r in report.matched.items()} == {
        "A-100": "gid://shopify/ProductVariant/9007199254740993",
        "A-200": "gid://shopify/ProductVariant/2",
    }
    reasons = [u.reason for u in report.unmatched]
    assert reasons == ["SKU 'a-100' and barcode None are unknown", "no SKU or barcode"]


def test_two_records_claiming_one_sku_are_reported_not_both_mapped() -> None:
    report = match([ExternalRecord("s", "1", sku="B-300"), ExternalRecord("s", "2", sku="B-300")], SKUS, {})
    assert list(report.matched) == ["B-300"] and report.matched["B-300"].id == "1"
    assert report.unmatched[0].reason == "sku matches B-300, already matched by s id 1"


def test_describe_lists_a_column_per_system() -> None:
    rows = describe(
        [Identity("variant", "A-100", {"erp": "A-100", "shopify": "gid://1"})], ["erp", "shopify", "hubspot"]
    )
    assert rows == [{"key": "A-100", "erp": "A-100", "shopify": "gid://1", "hubspot": "-"}]
