"""Pagination, once for every list: ``page``/``page_size`` in, ``{items, total, page,
page_size}`` out (and ``counts`` per tab where the manual shows status tabs).

    @router.get("/me/orders", response_model=TabbedPage[OrderOut])
    async def my_orders(session: SessionDep, paging: Paging, ...):
        total, rows = await paginate(session, query, paging)
        return TabbedPage[OrderOut](items=[...], total=total, counts=counts, **paging.echo())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.sql import Select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select as ModelSelect
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")

MAX_PAGE = 100_000
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def echo(self) -> dict[str, int]:
        return {"page": self.page, "page_size": self.page_size}


async def page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="页码，从 1 开始")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="每页条数")] = 20,
) -> PageParams:
    return PageParams(page, page_size)


Paging = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class TabbedPage(Page[T], Generic[T]):
    counts: dict[str, int]


async def paginate(
    session: AsyncSession,
    query: Select[Any] | ModelSelect[*tuple[Any, ...]] | SelectOfScalar[Any],
    paging: PageParams,
) -> tuple[int, list[Any]]:
    """(total, the page's rows) of an ordered ``select(Model)`` query."""
    total = (await session.exec(select(func.count()).select_from(query.order_by(None).subquery()))).one()
    rows = (await session.exec(query.offset(paging.offset).limit(paging.page_size))).all()  # type: ignore[call-overload]
    return int(total), list(rows)
