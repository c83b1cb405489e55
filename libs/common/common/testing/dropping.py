"""Test databases dropped in the background, several at once.

PostgreSQL makes every ``DROP DATABASE`` wait for a checkpoint (about 1.6 s here, more under
load), and a test that dropped its databases in its own teardown waited for it: with a
database or seven per test, that was minutes of a run spent idle. Drops asked for at once
share one checkpoint (six took 1.2 s together), so the teardown only queues the name, a thread
drops what has queued (``BATCH`` at a time, concurrently), and the session waits for the rest
at its end (``flush``).
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading

from common.db import connect
from common.settings import database_in

BATCH = 2  # connections per worker: PostgreSQL allows 100 in all, and the tests use most of them
_STOP = ("", "")


class Dropper:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failures: list[str] = []

    def drop(self, server: str, name: str) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
                self._thread.start()
        self._queue.put((server, name))

    def flush(self) -> None:
        """Wait until every queued database is dropped (the end of a session)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join()
        if self.failures:
            print(
                f"\n[tests] could not drop {len(self.failures)} database(s): {self.failures[:5]}",
                file=sys.stderr,
            )

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        while True:
            batch = [await asyncio.to_thread(self._queue.get)]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            await asyncio.gather(*(self._drop(server, name) for server, name in batch if name))
            if stop:
                return

    async def _drop(self, server: str, name: str) -> None:
        try:
            conn = await connect(database_in(server, "postgres"))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
        except Exception as exc:  # noqa: BLE001 - reported at the end, never fails a test
            self.failures.append(f"{name}: {exc}")


dropper = Dropper()
