"""The public portal: the listing (通用券服务 / 设备更新专项券服务), a product's detail page,
an organisation's page (机构详情), the categories, favourites (我的收藏)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from common.pagination import Page


class ListingItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    category: str
    voucher_type: str = ""
    provider_id: str
    provider_name: str = ""
    platform_price_fen: int
    market_price_fen: int
    max_subsidy_fen: int
    sales: int
    revenue_fen: int
    rating: float | None = None


class ProviderCard(BaseModel):
    id: str
    name: str
    phone: str  # masked (138****6433) for everyone but the provider's own members
    address: str
    working_hours: str
    product_count: int  # 拥有N个产品: its listed products


class VoucherPreview(BaseModel):
    """The caller's voucher on this product, as quota quotes it (券后价, 最高补贴, 用券有效期)."""

    voucher_type: str
    voucher_type_label: str
    voucher_no: str | None = None
    subsidy_fen: int
    price_after_fen: int
    max_subsidy_fen: int
    valid_from: date | None = None
    valid_to: date | None = None


class ProductDetail(ListingItem):
    description: str
    deliverables: str
    acceptance_criteria: str
    visits: int  # 访问次数
    applications: int  # 申请次数
    listed_at: datetime | None = None
    provider: ProviderCard
    voucher_preview: VoucherPreview | None = None
    favorited: bool = False


class ProviderPage(BaseModel):
    """机构详情: the provider and its listed products."""

    id: str
    name: str
    profile: str
    categories: list[str]
    phone: str
    address: str
    working_hours: str
    product_count: int
    products: Page[ListingItem]


class CategoryOut(BaseModel):
    name: str
    voucher_type: str
    voucher_type_label: str
    listing: str  # general (通用券服务) | special (设备更新专项券服务)
    product_count: int


class FavoriteItem(ListingItem):
    favorited_at: datetime | None = None
    listed: bool = True  # False once the product left the listing (kept in the list, greyed)
