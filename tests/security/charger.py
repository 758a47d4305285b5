"""A charger for the site CA's tests: the `ocpp` package's ChargePoint (an independent
client) that answers ExtendedTriggerMessage(SignChargePointCertificate) with a CSR and
CertificateSigned as told, like a Security Whitepaper charger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result

from edge.app import App
from edge.config import Config
from tests.chargepoint import TaskChargePoint, ocpp_connect, reading
from tests.conftest import TIME_SCALE, Api, ocpp_url, running
from tests.security import certs

TIMEOUT = 15 * TIME_SCALE


class SecurityCP(TaskChargePoint):
    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection, response_timeout=10 * TIME_SCALE)
        self.csr_cn = charger_id
        self.csr_options: dict[str, Any] = {}
        self.answer = "Accepted"
        self.keys: list[Any] = []
        self.sign_answers: asyncio.Queue[str] = asyncio.Queue()
        self.chains: asyncio.Queue[str] = asyncio.Queue()
        self.wire: list[list[Any]] = []
        """Every frame received, parsed, in the order it arrived."""

    async def route_message(self, raw_msg: str | bytes) -> None:
        self.wire.append(json.loads(raw_msg))
        await super().route_message(raw_msg)

    def wire_kinds(self) -> list[str]:
        """The frames as "CALLRESULT" or "CALL <Action>"."""
        return [
            f"CALL {frame[2]}" if frame[0] == 2 else "CALLRESULT" if frame[0] == 3 else "ERROR"
            for frame in self.wire
        ]

    @on("ExtendedTriggerMessage")
    def on_trigger(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message != "SignChargePointCertificate":
            return call_result.ExtendedTriggerMessage(status="NotImplemented")
        self.spawn(self.sign())
        return call_result.ExtendedTriggerMessage(status="Accepted")

    async def sign(self) -> str:
        csr, key = certs.make_csr(self.csr_cn, **self.csr_options)
        self.keys.append(key)
        result = await self.call(call.SignCertificate(csr=csr))
        await self.sign_answers.put(result.status)
        return str(result.status)

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str) -> Any:
        self.chains.put_nowait(certificate_chain)
        if self.answer == "Rejected":
            self.spawn(self.invalid_certificate_event())
        return call_result.CertificateSigned(status=self.answer)

    async def invalid_certificate_event(self) -> None:
        await self.call(
            call.SecurityEventNotification(
                type="InvalidChargePointCertificate",
                timestamp="2026-12-04T12:00:00.000Z",
                tech_info="certificate refused by the charger",
            )
        )


@contextlib.asynccontextmanager
async def security_cp(
    url: str,
    charger_id: str,
    *,
    registration: str = "Accepted",
    kind: type[SecurityCP] = SecurityCP,
    **connect_args: Any,
) -> AsyncIterator[SecurityCP]:
    """A connected SecurityCP (or `kind` of it) with its read loop running, booted with
    serial SN-<id> (and answered `registration`); `connect_args` go to `ocpp_connect`."""
    async with ocpp_connect(url, **connect_args) as ws, reading(kind(charger_id, ws)) as cp:
        boot = await cp.call(
            call.BootNotification(
                charge_point_model="Secure-1",
                charge_point_vendor="Acme",
                charge_point_serial_number=f"SN-{charger_id}",
            )
        )
        assert boot.status == registration
        yield cp


@contextlib.asynccontextmanager
async def site_with_charger(
    config: Config, charger_id: str, **options: Any
) -> AsyncIterator[tuple[App, Api, SecurityCP]]:
    """The App on `config` with its API client, and a SecurityCP on its ws listener
    (`security_cp`'s `options`), within TIMEOUT."""
    async with (
        running(config) as (app, api),
        asyncio.timeout(TIMEOUT),
        security_cp(ocpp_url(app, charger_id), charger_id, **options) as cp,
    ):
        yield app, api, cp
