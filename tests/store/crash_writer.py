"""Child process for the kill -9 test: writes without pause, reporting acknowledgements.

Usage: python crash_writer.py DATA_DIR

Prints one line per acknowledged write, only after it is durable:

- ``D <version>``: the state document's version, after DocumentStore.flush()
- ``T <id>``: a started transaction, after its future resolved
- ``S <id> <n>``: the transaction's n-th meter sample, after its future resolved
- ``P <id>``: the transaction stopped, after its future resolved
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tinydb.table import Document

from edge.store import DocumentStore, Journal, MeterSample


def say(line: str) -> None:
    # One write() per line: the parent counts only complete lines.
    os.write(1, (line + "\n").encode())


async def main(data_dir: Path) -> None:
    store = DocumentStore(data_dir / "state.json")
    table = store.table("state")
    current = table.get(doc_id=1)
    version = 0 if current is None else int(current["version"])  # type: ignore[index, call-overload]
    journal = Journal(data_dir / "journal.db")
    await journal.open()
    say("ready")

    async def documents() -> None:
        nonlocal version
        while True:
            version += 1
            # Vary the size so a torn file could not pass for a complete one.
            table.upsert(
                Document({"version": version, "pad": "x" * (version * 7919 % 300_000)}, doc_id=1)
            )
            table.insert({"n": version})
            if len(table) > 200:
                table.truncate()
                table.upsert(Document({"version": version}, doc_id=1))
            store.flush()
            say(f"D {version}")
            await asyncio.sleep(0)  # mostly rewriting the file: the riskiest moment

    async def charger(k: int) -> None:
        while True:
            tid = await journal.start_transaction(
                charger_id=f"CP{k}",
                connector_id=1,
                id_tag="TAG",
                id_tag_status="Accepted",
                meter_start=0,
                start_time="2026-01-01T00:00:00Z",
                reservation_id=None,
                created_at="2026-01-01T00:00:00.000Z",
            )
            say(f"T {tid}")
            for n in range(1, 6):
                value = [{"value": str(n), "measurand": "Energy.Active.Import.Register"}]
                await journal.add_meter_samples(
                    charger_id=f"CP{k}",
                    connector_id=1,
                    transaction_id=tid,
                    samples=[MeterSample(timestamp="t", register_wh=float(n), sampled_value=value)],
                )
                say(f"S {tid} {n}")
            await journal.stop_transaction(
                transaction_id=tid, meter_stop=5, stop_time="t", reason="Local", stop_id_tag=None
            )
            say(f"P {tid}")

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(documents())
        for k in range(5):
            tasks.create_task(charger(k))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
