"""The public portal: the listing (通用券服务 / 设备更新专项券服务), a product's detail page,
an organisation's page (机构详情), the categories, favourites (我的收藏).

服务电话, the ``phone`` of the provider card and of 机构详情, is shown in full to everyone,
signed in or not (issue 13, 双方接洽). It is the provider profile's ``contact_phone``: the one
number a provider publishes for its customers, which it gives when it applies (申请入驻平台)
and edits in 服务机构信息, and which the form tells it is public. It is business data of an
organisation that sells to the public, like its address and working hours, and an enterprise
has to call it before it orders; masked, it reached nobody. People's own numbers (an account's
phone, an agent's, a demand's contact) are not this number and stay masked where they are.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

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
    phone: str = Field(description="服务电话：服务机构公开的服务热线，完整展示")
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
    phone: str = Field(description="服务电话：服务机构公开的服务热线，完整展示")
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
