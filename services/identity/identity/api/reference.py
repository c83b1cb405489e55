"""Reference data for 支付认证's keyword boxes: regions (开户所在地), banks (开户银行) and
bank branches (开户支行). Public (no token): the data is public and the same for everyone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from common.openapi import problems
from common.pagination import Page, Paging
from identity import errors
from identity.domain.reference import Branch, Region
from identity.schemas.reference import BankBranchOut, BankOut, RegionOut
from identity.service.reference import reference

router = APIRouter(prefix="/api/v1/reference", tags=["reference"])

Keyword = Annotated[str | None, Query(max_length=50, description="关键词，空格分隔的每个词都须匹配")]


def region_out(r: Region) -> RegionOut:
    return RegionOut(
        code=r.code,
        name=r.name,
        full_name=r.full_name,
        parent=r.parent,
        level=r.level,
        selectable=r.selectable,
    )


def branch_out(b: Branch) -> BankBranchOut:
    region = reference().region_by_code.get(b.region)
    return BankBranchOut(
        name=b.name,
        bank=b.bank,
        bank_code=b.bank_code,
        cnaps_code=b.cnaps_code,
        region=b.region,
        region_name=region.full_name if region else "",
    )


@router.get(
    "/regions",
    response_model=Page[RegionOut],
    summary="行政区划查询（开户所在地）",
    description="按关键词查询省份和地级市（GB/T 2260）。`parent` 为省份代码时只列其下的城市，"
    "为空字符串时只列省份。开户所在地填写 `selectable` 为 true 的行的 `full_name`。无需登录。",
    response_description="匹配的行政区划（分页）",
    responses=problems(errors.region_not_found("parent", "999999")),
)
async def regions(
    paging: Paging,
    q: Keyword = None,
    parent: Annotated[str | None, Query(max_length=6, description="上级行政区划代码")] = None,
) -> Page[RegionOut]:
    ref = reference()
    if parent and parent not in ref.region_by_code:
        raise errors.region_not_found("parent", parent)
    rows = ref.search_regions(q, parent)
    items = rows[paging.offset : paging.offset + paging.page_size]
    return Page[RegionOut](items=[region_out(r) for r in items], total=len(rows), **paging.echo())


@router.get(
    "/banks",
    response_model=Page[BankOut],
    summary="银行查询（开户银行）",
    description="按关键词查询支行数据中的银行。无需登录。",
    response_description="匹配的银行（分页）",
)
async def banks(paging: Paging, q: Keyword = None) -> Page[BankOut]:
    ref = reference()
    found = ref.search_branches(bank=q) if q else list(ref.branches)
    codes = {b.bank: b.bank_code for b in found}
    rows = [BankOut(name=name, bank_code=code) for name, code in codes.items()]
    items = rows[paging.offset : paging.offset + paging.page_size]
    return Page[BankOut](items=items, total=len(rows), **paging.echo())


@router.get(
    "/bank-branches",
    response_model=Page[BankBranchOut],
    summary="开户支行查询",
    description="按关键词查询银行支行（名称或银行），可限定所在地 `region`（行政区划代码或全称，"
    "省份含其下城市）和银行 `bank`（名称关键词）。开户支行名称填写所选行的 `name`。无需登录。",
    response_description="匹配的支行（分页）",
    responses=problems(errors.region_not_found("region", "火星")),
)
async def bank_branches(
    paging: Paging,
    q: Keyword = None,
    region: Annotated[str | None, Query(max_length=100, description="所在地：行政区划代码或全称")] = None,
    bank: Annotated[str | None, Query(max_length=100, description="开户银行名称关键词")] = None,
) -> Page[BankBranchOut]:
    ref = reference()
    where = ref.region(region) if region else None
    if region and where is None:
        raise errors.region_not_found("region", region)
    rows = ref.search_branches(q, where, bank)
    items = rows[paging.offset : paging.offset + paging.page_size]
    return Page[BankBranchOut](items=[branch_out(b) for b in items], total=len(rows), **paging.echo())
