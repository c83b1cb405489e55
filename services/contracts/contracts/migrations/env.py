from sqlmodel import SQLModel

import contracts.models  # noqa: F401 - registers the tables
from common import (  # noqa: F401 - outbox, inbox, timers, sequences, audit log
    audit,
    orgs,
    tables,
)
from common.migrations_env import run

run(SQLModel.metadata)
