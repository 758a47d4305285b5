"""Baseline central system: the `ocpp` package's documented pattern, state in memory only.

One `ocpp.v16.ChargePoint` subclass with `@on(...)` handlers, served by
`websockets.serve(on_connect, host, port, subprotocols=["ocpp1.6"])`, one
`await cp.start()` per connection: the README's "Central system" example,
completed with the seven actions the benchmark's chargers send.

Deliberate differences from the example, all in the baseline's favour or neutral:
- the ocpp logger is at WARNING (the example logs every frame at INFO, which
  would make the baseline far slower than a production deployment of it);
- ConnectionClosed ends the handler quietly instead of logging a traceback;
- no durable storage: transactions and meter values are kept in dicts.

Run: `python -m bench.baseline_server [--host H] [--port P] [--loop asyncio|uvloop]`.
Prints "listening for OCPP 1.6J on ws://HOST:PORT/" on stderr once bound,
the same line edge-csms logs; SIGTERM/SIGINT close the server and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import resource
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.exceptions import ConnectionClosed

__all__ = ["CentralSystemChargePoint", "main"]

log = logging.getLogger("baseline")

_transaction_ids = itertools.count(1)
# charger id -> last status per connector; transaction id -> meter values received
STATUSES: dict[str, dict[int, str]] = {}
TRANSACTIONS: dict[int, dict[str, Any]] = {}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CentralSystemChargePoint(Cp):
    """The CSMS side of one charger connection."""

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        STATUSES.setdefault(self.id, {})[connector_id] = status
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted))

    @on(Action.start_transaction)
    def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> call_result.StartTransaction:
        transaction_id = next(_transaction_ids)
        TRANSACTIONS[transaction_id] = {
            "charger": self.id,
            "connector": connector_id,
            "idTag": id_tag,
            "meterStart": meter_start,
            "meterValues": [],
        }
        return call_result.StartTransaction(
            transaction_id=transaction_id,
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted),
        )

    @on(Action.meter_values)
    def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        tx = TRANSACTIONS.get(kwargs.get("transaction_id", -1))
        if tx is not None:
            tx["meterValues"].extend(meter_value)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        TRANSACTIONS.pop(transaction_id, None)
        return call_result.StopTransaction(
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )


async def on_connect(websocket: Any) -> None:
    """For every new charge point that connects, create a ChargePoint and listen."""
    if not websocket.subprotocol:
        await websocket.close()
        return
    charge_point_id = websocket.request.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    cp = CentralSystemChargePoint(charge_point_id, websocket)
    with contextlib.suppress(ConnectionClosed):
        await cp.start()


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await websockets.serve(on_connect, host, port, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    for sock in server.sockets:
        addr = sock.getsockname()
        print(f"listening for OCPP 1.6J on ws://{addr[0]}:{addr[1]}/", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
