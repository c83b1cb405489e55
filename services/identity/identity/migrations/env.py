from sqlmodel import SQLModel

import identity.models  # noqa: F401 - registers the tables
from common import tables  # noqa: F401 - outbox, inbox, timers, sequences
from common.migrations_env import run

run(SQLModel.metadata)
