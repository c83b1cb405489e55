"""The public portal: 通用券服务 / 设备更新专项券服务 listings, search and sorting (销量 / 价格 /
销售额), a product's detail page, 机构详情, the categories."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from catalog import errors
from catalog.models import Favorite, Product, Provider
from catalog.schemas.listing import CategoryOut, ListingItem, ProductDetail, ProviderCard, ProviderPage
from catalog.service import listing as service
from common.app import ClientsDep, ReadSessionDep, SessionDep
from common.auth import OptionalUser, access_revoked, token_expired, token_invalid, token_revoked
from common.categories import CATEGORIES, GENERAL, VOUCHER_TYPES, voucher_type_for
from common.openapi import problems
from common.orgs import is_suspended
from common.pagination import Page, Paging

router = APIRouter(prefix="/api/v1", tags=["portal"])

Fen = Annotated[int, Query(ge=0, le=10**12)]


@router.get(
    "/products",
    response_model=Page[ListingItem],
    summary="服务产品列表（通用券服务 / 设备更新专项券服务）",
    description=(
        "门户的服务产品列表，无需登录：未被暂停的服务机构已上架的产品。可按服务类型、券种（general 为通用券服务，"
        "special 为设备更新专项券服务）、服务名关键字和价格区间（分）筛选，按销量、价格或销售额排序；"
        "不指定排序时最新上架的在前。"
    ),
    response_description="一页服务产品",
    responses=problems(errors.unknown_category, errors.price_range_invalid),
)
async def listing(
    session: ReadSessionDep,
    paging: Paging,
    category: Annotated[str | None, Query(max_length=20, description="服务类型")] = None,
    voucher_type: Annotated[
        Literal["general", "special", "financing_guarantee", "equipment_leasing"] | None,
        Query(description="general: 通用券服务; special: 设备更新专项券服务"),
    ] = None,
    q: Annotated[str | None, Query(max_length=50, description="服务名关键字")] = None,
    min_price_fen: Fen | None = None,
    max_price_fen: Fen | None = None,
    sort: Annotated[
        Literal["sales", "price", "revenue"] | None, Query(description="销量 / 价格 / 销售额")
    ] = None,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> Page[ListingItem]:
    """Listed products of unsuspended providers; without ``sort``, the newest listings first."""
    if category and category not in CATEGORIES:
        raise errors.unknown_category()
    if min_price_fen is not None and max_price_fen is not None and min_price_fen > max_price_fen:
        raise errors.price_range_invalid()
    conditions = service.listing_conditions(
        category=category,
        voucher_type=voucher_type,
        q=(q or "").strip() or None,
        min_price_fen=min_price_fen,
        max_price_fen=max_price_fen,
    )
    total, rows = await service.listing_page(session, conditions, paging, sort, order)
    return Page[ListingItem](items=rows, total=total, **paging.echo())


@router.get(
    "/products/{product_id}",
    response_model=ProductDetail,
    summary="服务产品详情",
    description=(
        "服务产品详情页，无需登录：产品信息、服务机构名片（服务电话、地址、工作时间）、访问次数和申请次数；"
        "每次他人查看计一次访问。带已认证企业的登录凭证时，另给出该企业服务券在此产品上的预览"
        "（券后价、最高补贴、用券有效期）和是否已收藏。未上架的产品只有本机构成员和平台人员可见，其他人为 404。"
    ),
    response_description="服务产品详情",
    responses=problems(errors.product_not_found, token_invalid, token_expired, token_revoked, access_revoked),
)
async def detail(
    product_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    clients: ClientsDep,
    user: OptionalUser,
) -> ProductDetail:
    """服务产品详情: the provider card, 访问次数 and 申请次数, and with an enterprise's token its
    voucher preview (券后价, 最高补贴, 用券有效期). Another organisation's unlisted product is a
    404; its own members and staff see every status."""
    product = await session.get(Product, product_id)
    if product is None:
        raise errors.product_not_found()
    mine = service.own_member(user, product.provider_id)
    staff = user is not None and user.is_staff
    if not (mine or staff) and not await service.is_visible(session, product_id):
        raise errors.product_not_found()
    provider = await session.get(Provider, product.provider_id)
    if provider is None:
        raise errors.product_not_found()
    visits = product.visits
    if not (mine or staff):
        visits = await service.count_visit(session, product_id)
        await session.commit()
    favorited = False
    if user is not None:
        favorited = await session.get(Favorite, (user.user_id, product_id)) is not None
    card = ProviderCard(
        id=provider.org_id,
        name=provider.name,
        phone=provider.contact_phone,  # 服务电话: public (schemas.listing.ProviderCard)
        address=provider.address,
        working_hours=provider.working_hours,
        product_count=await service.listed_count(session, provider.org_id),
    )
    preview = None
    if clients is not None and product.status == "listed":
        preview = await service.voucher_preview(clients, user, product)
    return service.item(
        product,
        provider.name,
        ProductDetail,
        visits=visits,
        provider=card,
        voucher_preview=preview,
        favorited=favorited,
    )


@router.get(
    "/providers/{provider_id}",
    response_model=ProviderPage,
    summary="机构详情",
    description="服务机构详情页，无需登录：机构简介、服务类型、服务电话、地址、工作时间及其已上架的服务产品（分页；机构被暂停期间不展示产品）。",
    response_description="服务机构及其一页服务产品",
    responses=problems(errors.provider_not_found),
)
async def provider_page(
    provider_id: Annotated[str, Path(max_length=64)],
    session: ReadSessionDep,
    paging: Paging,
) -> ProviderPage:
    """机构详情 with its listed products (none while it is suspended) and its 服务电话 in full."""
    provider = await session.get(Provider, provider_id)
    if provider is None:
        raise errors.provider_not_found()
    conditions = service.listing_conditions(provider_id=provider_id)
    total, rows = await service.listing_page(session, conditions, paging)
    products = Page[ListingItem](items=rows, total=total, **paging.echo())
    return ProviderPage(
        id=provider.org_id,
        name=provider.name,
        profile=provider.profile,
        categories=list(provider.categories),
        phone=provider.contact_phone,  # 服务电话: public (schemas.listing.ProviderCard)
        address=provider.address,
        working_hours=provider.working_hours,
        product_count=total if not await is_suspended(session, provider_id) else 0,
        products=products,
    )


@router.get(
    "/categories",
    response_model=list[CategoryOut],
    summary="服务类型",
    description="平台的九类服务，无需登录：每类由哪种服务券支付（通用券、融资担保专项券、直接设备租赁专项券）、属于哪个列表及已上架的产品数。",
    response_description="九类服务",
)
async def categories(session: ReadSessionDep) -> list[CategoryOut]:
    """The nine service categories, the voucher that pays for each and its listed products."""
    counts = await service.category_counts(session)
    out = []
    for name in CATEGORIES:
        voucher_type = voucher_type_for(name)
        out.append(
            CategoryOut(
                name=name,
                voucher_type=voucher_type,
                voucher_type_label=VOUCHER_TYPES[voucher_type],
                listing="general" if voucher_type == GENERAL else "special",
                product_count=counts.get(name, 0),
            )
        )
    return out
