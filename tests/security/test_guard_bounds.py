"""The bounds already in the endpoint, kept: a charger that floods without reading its
answers is held back by TCP (the server buffers a bounded amount for it), the others are
served meanwhile, and once it reads, every CALL it sent is answered, in order.

(Frame size: tests/integration/test_connections.py::test_oversize_message_closes_with_1009;
header sizes and half-open handshakes: test_guard_fuzz.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

from edge.app import App
from tests.chargepoint import ocpp_connect
from tests.conftest import TIME_SCALE, make_config, ocpp_url
from tests.helpers import eventually
from tests.integration.test_server_fuzz import Watchdog

FRAMES = 6000
DATA = "x" * 2000  # ~2 KB a frame: 8 MB in all, far beyond every buffer on the way


async def test_a_flood_without_reading_is_held_back_and_nothing_is_lost(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    max_size = config.ocpp.max_message_size
    async with App(config) as app:
        watchdog = Watchdog(ocpp_url(app, "WATCH1"))
        watch = asyncio.create_task(watchdog.run())
        # A small receive window (set before connecting), as a charger that stopped
        # reading would soon show: the server's answers back up quickly.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", app.ocpp_port))
        flood = await ocpp_connect(
            ocpp_url(app, "FLOOD"),
            sock=sock,
            max_size=None,
            max_queue=None,  # the client keeps every answer: nothing is dropped on our side
        )
        await flood.send(
            json.dumps(
                [2, "boot", "BootNotification", {"chargePointVendor": "F", "chargePointModel": "L"}]
            )
        )
        assert json.loads(await flood.recv())[0] == 3
        # Pause the client's reading: its socket fills, then the server's send buffer.
        flood.transport.pause_reading()

        async def send_all() -> None:
            for n in range(FRAMES):
                payload = {"vendorId": "flood", "data": DATA}
                await flood.send(json.dumps([2, f"f{n}", "DataTransfer", payload]))

        session = await eventually(lambda: app.sessions.get("FLOOD"))
        ws = session.ws
        # The kernel's buffers on loopback grow to megabytes and would hide the process's
        # own bounds: keep the server's send buffer small, as on a loaded Pi.
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sender = asyncio.create_task(send_all())
        # The server's answers back up: its session waits on them and stops reading; what
        # the flooder sends then waits in the kernel's socket buffers, not in the process.
        await eventually(lambda: ws.transport.get_write_buffer_size() > 0, timeout=10 * TIME_SCALE)
        peak_out = peak_in = peak_queue = 0
        answered = watchdog.answered
        for _ in range(40):
            await asyncio.sleep(0.05)
            peak_out = max(peak_out, ws.transport.get_write_buffer_size())
            peak_in = max(peak_in, len(ws.protocol.reader.buffer))
            peak_queue = max(peak_queue, len(ws.recv_messages.frames))
        received = app.services.metrics.value("edge_ocpp_frames_received_total")
        assert received < FRAMES, received  # held back, not read ahead into memory
        # Bounded in the process: the write high-water mark plus one answer; max_queue
        # messages and what one read of the socket brings.
        assert peak_out <= 2**15 + 1024, peak_out
        assert peak_queue <= 8 + 2**18 // len(DATA), peak_queue
        assert peak_in <= max_size + 2**18, peak_in
        # The other charger is served meanwhile.
        await eventually(lambda: watchdog.answered > answered + 3, timeout=10 * TIME_SCALE)

        # The flooder reads again: every CALL is answered, in order.
        flood.transport.resume_reading()
        for n in range(FRAMES):
            frame = json.loads(await asyncio.wait_for(flood.recv(), 10 * TIME_SCALE))
            assert frame[:2] == [3, f"f{n}"], frame
        await asyncio.wait_for(sender, 10 * TIME_SCALE)
        summary = f"out {peak_out} B, in {peak_in} B, queued {peak_queue} frames"
        print(f"FUZZ-SUMMARY flood {FRAMES} frames held back: {summary}")
        await flood.close()
        watchdog.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(watch, 10 * TIME_SCALE)
        assert not watchdog.failures, watchdog.failures
