from common.migrations_env import run
from gateway.models import metadata

run(metadata)
