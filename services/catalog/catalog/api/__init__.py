"""catalog's public routers (thin: deps -> service -> one commit -> Out), one module per
resource."""

from __future__ import annotations

from fastapi import APIRouter

from catalog.api import favorites, listing, products, providers

ROUTERS: list[APIRouter] = [providers.router, products.router, listing.router, favorites.router]
