"""The bounded queue in front of the one inference thread.

A request is admitted once its body is read and holds its place while its photo is decoded, waits its turn and
runs; at most ``limit`` are admitted at once (waiting + running), and the next gets 503 with Retry-After at once
instead of a place in an ever longer line. Turns come in arrival order, and a request whose client hung up while it
waited is dropped before its inference runs: a client that hangs up costs nothing.
"""
from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request

from segkit.serve.errors import CLIENT_GONE, ServiceError

RETRY_AFTER_S = 1  # an inference takes well under a second at Cityscapes' size; a busy client retries soon


class InferenceQueue:
    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit={limit} must be at least 1")
        self.limit = limit
        self.depth = 0  # admitted: waiting or running (touched only on the event loop's thread)
        self._turn = asyncio.Lock()  # FIFO: asyncio wakes a lock's waiters in order

    @contextlib.contextmanager
    def admit(self):
        """A place in the queue for the ``with`` block, or 503 when all ``limit`` places are taken."""
        if self.depth >= self.limit:
            raise ServiceError(503, "queue_full", f"the service is busy (its --max-queue of {self.limit} requests "
                                                  f"are waiting or running); retry in {RETRY_AFTER_S} s.",
                               {"Retry-After": str(RETRY_AFTER_S)})
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    async def run(self, request: Request, submit, *args):
        """``submit(*args)`` (a function returning a ``concurrent.futures.Future``) when this request's turn comes,
        its result awaited; 499 instead when the client hung up while it waited."""
        async with self._turn:
            if await request.is_disconnected():
                raise ServiceError(CLIENT_GONE, "client_gone", "the client hung up before its turn; nothing was run.")
            return await asyncio.wrap_future(submit(*args))
