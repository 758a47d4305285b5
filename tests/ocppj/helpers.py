"""Test helpers: a CSMS endpoint wired to a charge-point endpoint over a fake link.

Modelled on h11's ``ConnectionPair``: frames move only when the test calls
:meth:`RpcPair.flush`, and time moves only when it calls :meth:`RpcPair.advance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from edge.ocppj import RpcEndpoint


@dataclass
class RpcPair:
    """A ``csms`` endpoint and a ``charge_point`` endpoint that talk through lists."""

    call_timeout: float = 30.0
    max_queued_calls: int = 64
    now: float = 1000.0
    csms: RpcEndpoint = field(init=False)
    cp: RpcEndpoint = field(init=False)
    wire: list[tuple[str, Any]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.csms = RpcEndpoint(
            role="csms",
            id_prefix="csms",
            call_timeout=self.call_timeout,
            max_queued_calls=self.max_queued_calls,
        )
        self.cp = RpcEndpoint(
            role="charge_point",
            id_prefix="cp",
            call_timeout=self.call_timeout,
            max_queued_calls=self.max_queued_calls,
        )

    def flush(self) -> int:
        """Deliver every pending frame in both directions until both sides are quiet.

        Returns the number of frames delivered. Each delivered frame is also recorded,
        decoded, in :attr:`wire` as ``("cp->csms" | "csms->cp", frame)``.
        """
        delivered = 0
        while True:
            to_csms = self.cp.data_to_send()
            to_cp = self.csms.data_to_send()
            if not to_csms and not to_cp:
                return delivered
            for data in to_csms:
                self.wire.append(("cp->csms", orjson.loads(data)))
                self.csms.receive_text(data, self.now)
            for data in to_cp:
                self.wire.append(("csms->cp", orjson.loads(data)))
                self.cp.receive_text(data, self.now)
            delivered += len(to_csms) + len(to_cp)

    def advance(self, seconds: float) -> None:
        """Move the shared clock forward and let both endpoints handle their timeouts."""
        self.now += seconds
        self.csms.handle_timeouts(self.now)
        self.cp.handle_timeouts(self.now)
