"""A background loop: runs ``tick()`` when nudged or every ``poll_interval``; after failures
it backs off exponentially (bounded) and logs the traceback once per outage, not every poll.
The outbox relay and the timer worker are such loops."""

from __future__ import annotations

import asyncio

import structlog

log = structlog.get_logger(__name__)


class PollingWorker:
    kind = "worker"

    def __init__(self, name: str, poll_interval: float, *, max_backoff: float = 30.0) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.failures = 0

    async def tick(self) -> bool:
        """Do one round of work; True when there is more to do at once."""
        raise NotImplementedError

    def nudge(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = self.poll_interval
            try:
                more = await self.tick()
                if self.failures:
                    log.info(f"{self.kind}_recovered", name=self.name, after_failures=self.failures)
                    self.failures = 0
                if more:
                    continue
            except Exception:
                self.failures += 1
                if self.failures == 1:
                    log.exception(f"{self.kind}_error", name=self.name)
                else:
                    log.warning(f"{self.kind}_still_failing", name=self.name, failures=self.failures)
                delay = min(self.max_backoff, self.poll_interval * 2**self.failures)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=f"{self.kind}-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except TimeoutError:
                self._task.cancel()
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
