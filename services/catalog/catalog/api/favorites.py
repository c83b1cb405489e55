"""我的收藏: any signed-in user's favourite products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select

from catalog import errors
from catalog.domain.products import Status
from catalog.models import Favorite, Product, Provider
from catalog.schemas.listing import FavoriteItem
from catalog.service import listing
from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser
from common.openapi import problems
from common.pagination import Page, Paging, paginate

router = APIRouter(prefix="/api/v1", tags=["favorites"])

ProductId = Annotated[str, Path(max_length=64)]


@router.put(
    "/me/favorites/{product_id}",
    status_code=204,
    summary="加入收藏",
    description="登录用户把一个已上架的服务产品加入“我的收藏”；重复收藏不改变任何内容。",
    response_description="已收藏",
    responses=problems(errors.product_not_found),
)
async def add(product_id: ProductId, user: CurrentUser, session: SessionDep) -> Response:
    """加入收藏 (a listed product; adding it twice changes nothing)."""
    if not await listing.is_visible(session, product_id):
        raise errors.product_not_found()
    await session.execute(
        pg_insert(Favorite).values(user_id=user.user_id, product_id=product_id).on_conflict_do_nothing()
    )
    await session.commit()
    return Response(status_code=204)


@router.delete(
    "/me/favorites/{product_id}",
    status_code=204,
    summary="取消收藏",
    description="登录用户把一个服务产品移出“我的收藏”；未收藏过的产品同样答 204。",
    response_description="已取消收藏",
)
async def remove(product_id: ProductId, user: CurrentUser, session: SessionDep) -> Response:
    await session.execute(
        delete(Favorite).where(col(Favorite.user_id) == user.user_id, col(Favorite.product_id) == product_id)
    )
    await session.commit()
    return Response(status_code=204)


@router.get(
    "/me/favorites",
    response_model=Page[FavoriteItem],
    summary="我的收藏",
    description="登录用户收藏的服务产品，最近收藏的在前；已不在门户展示的产品仍保留，标记 listed: false。",
    response_description="一页收藏的服务产品",
)
async def favorites(user: CurrentUser, session: ReadSessionDep, paging: Paging) -> Page[FavoriteItem]:
    """The newest first; a product that left the listing stays, marked ``listed: false``."""
    query = (
        select(Product, col(Provider.name), col(Favorite.created_at))
        .join(Favorite, col(Favorite.product_id) == col(Product.id))
        .join(Provider, col(Provider.org_id) == col(Product.provider_id), isouter=True)
        .where(col(Favorite.user_id) == user.user_id)
        .order_by(col(Favorite.created_at).desc(), col(Product.id).desc())
    )
    total, rows = await paginate(session, query, paging)
    visible = {
        pid
        for pid in (
            await session.exec(
                select(col(Product.id)).where(
                    col(Product.id).in_([p.id for p, _n, _t in rows]), *listing.public()
                )
            )
        ).all()
    }
    items = [
        listing.item(
            p, name or "", FavoriteItem, favorited_at=at, listed=p.id in visible and p.status == Status.LISTED
        )
        for p, name, at in rows
    ]
    return Page[FavoriteItem](items=items, total=total, **paging.echo())
