"""A scripted charge point over a real WebSocket: sends raw frames, answers the CSMS's CALLs.

Written independently of edge.ocppj (it frames and parses OCPP-J itself), so that the
tests, the benchmarks and the demo that drive the CSMS with it do not check our framing
with itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Payload = dict[str, Any]
# What the charger answers a CALL with: a payload, a function of the request's payload,
# (errorCode, description) for a CALLERROR, or "silent" for no answer at all.
Answer = Payload | Callable[[Payload], Payload] | tuple[str, str] | Literal["silent"]

_ids = itertools.count(1)


class CallRefused(Exception):
    """The CSMS answered a CALL with a CALLERROR where `RawCharger.call` expected a result.

    `frame` is the whole CALLERROR frame; use `RawCharger.call_raw` to expect one.
    """

    def __init__(self, action: str, frame: list[Any]) -> None:
        super().__init__(f"{action} answered with {frame}")
        self.frame = frame


class RawCharger:
    """One simulated charger. Use `async with RawCharger.connect(url) as cp:`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.answers: dict[str, Answer] = {}
        self.received_calls: list[tuple[str, Payload]] = []
        self.call_arrived = asyncio.Event()
        self._results: dict[str, asyncio.Future[list[Any]]] = {}
        self._unmatched: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> _Connector:
        return _Connector(cls, url, subprotocols or ["ocpp1.6"], headers)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    await self._answer(frame)
                    continue
                future = self._results.pop(frame[1], None)
                if future is not None and not future.done():
                    future.set_result(frame)
                else:
                    await self._unmatched.put(frame)
        except ConnectionClosed:
            pass
        finally:
            for future in self._results.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))
                    future.exception()  # the caller may have stopped waiting already

    async def _answer(self, frame: list[Any]) -> None:
        _, unique_id, action, payload = frame
        self.received_calls.append((action, payload))
        self.call_arrived.set()
        answer = self.answers.get(action, {})
        if answer == "silent":
            return
        if isinstance(answer, tuple):
            await self.ws.send(json.dumps([4, unique_id, answer[0], answer[1], {}]))
            return
        result = answer(payload) if callable(answer) else answer
        await self.ws.send(json.dumps([3, unique_id, result]))

    async def send_frame(self, frame: Any) -> None:
        """Send anything, JSON-encoded; or a str as it is."""
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def next_unmatched(self, timeout: float = 5.0) -> list[Any]:
        """The next CALLRESULT/CALLERROR frame that answered no call of ours."""
        return await asyncio.wait_for(self._unmatched.get(), timeout)

    async def call_raw(self, action: str, payload: Any, timeout: float = 5.0) -> list[Any]:
        """Send a CALL; return the whole answer frame (CALLRESULT or CALLERROR)."""
        unique_id = f"t{next(_ids)}"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._results[unique_id] = future
        try:
            await self.ws.send(json.dumps([2, unique_id, action, payload]))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._results.pop(unique_id, None)

    async def call(self, action: str, payload: Payload, timeout: float = 5.0) -> Payload:
        """Send a CALL and return its CALLRESULT payload.

        Raises:
            CallRefused: the CSMS answered with a CALLERROR.
            TimeoutError: no answer within `timeout` seconds.
            ConnectionError: the connection closed before the answer.
        """
        frame = await self.call_raw(action, payload, timeout)
        if frame[0] != 3:
            raise CallRefused(action, frame)
        result: Payload = frame[2]
        return result

    async def wait_for_call(self, action: str, timeout: float = 5.0) -> Payload:
        """Wait until the CSMS has sent `action`; return its payload."""

        async def seen() -> Payload:
            while True:
                for name, payload in self.received_calls:
                    if name == action:
                        return payload
                self.call_arrived.clear()
                await self.call_arrived.wait()

        return await asyncio.wait_for(seen(), timeout)

    async def boot(self, vendor: str = "VendorX", model: str = "ModelY") -> Payload:
        return await self.call(
            "BootNotification", {"chargePointVendor": vendor, "chargePointModel": model}
        )

    async def status(
        self, connector_id: int, status: str, error_code: str = "NoError", **extra: Any
    ) -> Payload:
        return await self.call(
            "StatusNotification",
            {"connectorId": connector_id, "status": status, "errorCode": error_code, **extra},
        )

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader


class _Connector:
    def __init__(
        self,
        cls: type[RawCharger],
        url: str,
        subprotocols: list[str],
        headers: dict[str, str] | None,
    ) -> None:
        self._cls = cls
        self._url = url
        self._subprotocols = subprotocols
        self._headers = headers
        self._charger: RawCharger | None = None

    async def __aenter__(self) -> RawCharger:
        ws = await connect(
            self._url,
            subprotocols=self._subprotocols,  # type: ignore[arg-type]
            additional_headers=self._headers,
            compression=None,
            proxy=None,
            open_timeout=5,
        )
        charger = self._charger = self._cls(ws)
        charger._reader = asyncio.create_task(charger._read())
        return charger

    async def __aexit__(self, *exc: object) -> None:
        if self._charger is not None:
            await self._charger.close()
