"""The gateway's own table (database ``gateway``): shared rate-limit counters."""

from sqlalchemy import BigInteger, Column, MetaData, PrimaryKeyConstraint, Table, Text

metadata = MetaData()

rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key", Text, nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("key", "window_start"),
)
