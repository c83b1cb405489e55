"""quota's request and response models (*In / *Out), one module per resource (the names of
``api``, ``domain`` and ``service``); every Out is built with ``model_validate``. Here: the
types they share."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common import money
from common.text import FREE_TEXT_CHECK

VoucherType = Literal["general", "financing_guarantee", "equipment_leasing"]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), FREE_TEXT_CHECK
]
PositiveFen = Annotated[money.PositiveFen, Field(le=10**13)]


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)
