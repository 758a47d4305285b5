"""What the tests' chargers share: a charger's WebSocket handshake, its Basic credentials,
and the `ocpp` package's ChargePoint (an independent client) run on a connection.

The library's read loop (`ChargePoint.start`) awaits each handler inline: a handler that
awaited `self.call` would deadlock it, so follow-up CALLs are started as tasks (`spawn`).

    async with ocpp_connect(url, ssl=ctx) as ws, reading(MyCP("CP1", ws)) as cp:
        await cp.call(...)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar

from ocpp.v16 import ChargePoint
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.conftest import TIME_SCALE

__all__ = ["TaskChargePoint", "basic_auth", "ocpp_connect", "reading"]


def ocpp_connect(
    url: str,
    *,
    subprotocols: Sequence[str] | None = ("ocpp1.6",),
    headers: dict[str, str] | None = None,
    open_timeout: float = 5 * TIME_SCALE,
    **kwargs: Any,
) -> connect:
    """A charger's opening handshake: `ocpp1.6` offered (None: no subprotocol at all), no
    compression (OCPP-J §5.1) unless `compression` is given, no proxy from the
    environment. Await it, or `async with` it; `kwargs` go to websockets' `connect`
    (`ssl`, `local_addr`, `max_size`, …). A refusal raises what websockets raises."""
    kwargs.setdefault("compression", None)
    return connect(
        url,
        subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols is not None else None,
        additional_headers=headers,
        proxy=None,
        open_timeout=open_timeout,
        **kwargs,
    )


def basic_auth(user: str | bytes, password: str | bytes) -> dict[str, str]:
    """The Authorization header of HTTP Basic credentials (bytes are sent as they are)."""
    raw_user = user.encode() if isinstance(user, str) else user
    raw_password = password.encode() if isinstance(password, str) else password
    token = base64.b64encode(raw_user + b":" + raw_password).decode()
    return {"Authorization": f"Basic {token}"}


class TaskChargePoint(ChargePoint):
    """A ChargePoint whose handlers start follow-up CALLs as tasks (`spawn`), cancelled
    when `reading` ends."""

    def __init__(self, charger_id: str, connection: Any, **kwargs: Any) -> None:
        super().__init__(charger_id, connection, **kwargs)
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()


CP = TypeVar("CP", bound=TaskChargePoint)


@contextlib.asynccontextmanager
async def reading(cp: CP) -> AsyncIterator[CP]:
    """`cp` with its read loop running; on exit the loop is stopped and the tasks it
    spawned are cancelled (the connection is its opener's to close)."""
    reader = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await reader
        cp.cancel_tasks()
