import demands.models  # noqa: F401 - registers the tables
from sqlmodel import SQLModel

from common import (  # noqa: F401 - outbox, inbox, timers, sequences, audit log
    access,
    audit,
    orgs,
    tables,
)
from common.migrations_env import run

run(SQLModel.metadata)
