"""The synchronous reads as contracts (common.reads), through the internal client: a newer
producer's extra field and an older producer's missing later field both parse, a 404 is
None, and an answer that is not the contract is the peer's 503, never a 500. Each
producer's own tests check that its real answer is its model, field for field (catalog
test_internal, quota test_internal, identity test_admin and test_files)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Response
from pydantic import ValidationError

from common.errors import Problem
from common.files import check_files, grant_files
from common.internal import ServiceClients
from common.orgs import has_receiving_account, read_identity
from common.reads import FileMeta, OrganizationFacts, ProductFacts, Quote
from common.testing.saga import FakeFile, FakeOrg, fake_identity

PRODUCT: dict[str, Any] = {
    "id": "p-1",
    "name": "专利分级评价",
    "category": "数字化转型",
    "provider_id": "prov-1",
    "provider_name": "广西测试科技服务有限公司",
    "provider_contact_name": "李四",
    "provider_contact_phone": "0771-5551234",
    "platform_price_fen": 7600,
    "market_price_fen": 8000,
    "max_subsidy_fen": 13800,
    "status": "listed",
    "listed": True,
    "provider_suspended": False,
}


def catalog(answers: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/products/{product_id}")
    async def product(product_id: str) -> Any:
        if product_id not in answers:
            raise HTTPException(404)
        return answers[product_id]

    return app


def clients(**peers: FastAPI) -> ServiceClients:
    return ServiceClients("orders", "s" * 32, peers=peers)


async def test_a_product_reads_as_its_facts_and_a_newer_catalogs_extra_field_is_ignored() -> None:
    c = clients(catalog=catalog({"p-1": {**PRODUCT, "rating": 4.5}}))
    product = await c.read("catalog", "/internal/products/p-1", ProductFacts)
    assert product is not None and product.model_dump() == PRODUCT
    assert product.sellable and product.provider_id == "prov-1" and product.platform_price_fen == 7600
    assert await c.read("catalog", "/internal/products/p-2", ProductFacts) is None  # 404


async def test_an_older_catalogs_product_without_the_providers_contact_still_reads() -> None:
    older = {k: v for k, v in PRODUCT.items() if not k.startswith("provider_contact_")}
    product = await clients(catalog=catalog({"p-1": older})).read(
        "catalog", "/internal/products/p-1", ProductFacts
    )
    assert product is not None
    assert (product.provider_contact_name, product.provider_contact_phone) == (None, None)


@pytest.mark.parametrize(
    "answer",
    [
        {k: v for k, v in PRODUCT.items() if k != "provider_id"},  # a field the contract needs
        {**PRODUCT, "platform_price_fen": "七十六元"},  # not an amount
        ["not", "an", "object"],
        Response(b"<html>502 Bad Gateway</html>", media_type="text/html"),  # not JSON at all
    ],
)
async def test_an_answer_that_is_not_the_contract_is_the_peers_503(answer: Any) -> None:
    with pytest.raises(Problem) as refused:
        await clients(catalog=catalog({"p-1": answer})).read(
            "catalog", "/internal/products/p-1", ProductFacts
        )
    assert (refused.value.status, refused.value.code) == (503, "dependency_unavailable")


def test_a_quote_reads_its_dates_and_amounts() -> None:
    quote = Quote.model_validate(
        {
            "voucher_id": "v-1",
            "voucher_no": "SVC240913101010001",
            "voucher_type": "general",
            "subsidy_fen": 3800,
            "ratio_bp": 5000,
            "remaining_fen": 10_000_000,
            "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
        }
    )
    assert (quote.subsidy_fen, quote.valid_from, quote.valid_to) == (
        3800,
        date(2026, 1, 1),
        date(2026, 12, 31),
    )
    with pytest.raises(ValidationError):
        quote.subsidy_fen = 0  # type: ignore[misc]  # frozen, as the events


async def test_identitys_organisation_and_file_reads_through_common() -> None:
    identity, files = fake_identity()
    identity.state.orgs["o-1"] = FakeOrg(
        "o-1",
        name="广西测试制造有限公司",
        kind="enterprise",
        certified=True,
        suspended=True,
        suspended_reason="违规",
    )
    identity.state.orgs["o-2"] = FakeOrg("o-2", bank_account=False)
    files["f-1"] = FakeFile("f-1", "o-1", name="发票.pdf")
    c = clients(identity=identity)

    view = await read_identity(c, "o-1")
    assert view is not None
    assert (view.name, view.certified, view.suspended, view.suspended_reason) == (
        "广西测试制造有限公司",
        True,
        True,
        "违规",
    )
    assert await read_identity(c, "o-9") is None
    assert await has_receiving_account(c, "o-1") is True
    assert await has_receiving_account(c, "o-2") is False
    assert await has_receiving_account(c, "o-9") is False  # unknown to identity

    (meta,) = await check_files(c, ["f-1"], org_id="o-1", field="invoice_file_ids")
    assert isinstance(meta, FileMeta) and (meta.name, meta.content_type) == ("发票.pdf", "application/pdf")
    await grant_files(c, ["f-1"], "o-2", "订单 ORD1 的发票")
    assert identity.state.grants == [("f-1", "o-2")]


async def test_an_older_identitys_organisation_without_the_bank_account_reads_as_none_on_file() -> None:
    doc = OrganizationFacts(
        org_id="o-1",
        name="",
        uscc=None,
        kind=None,
        certified=False,
        provider=False,
        suspended=False,
        suspended_reason=None,
    ).model_dump()
    del doc["bank_account"]
    assert OrganizationFacts.model_validate(doc).bank_account is False
