"""`python -m bench.upstream` at its smallest (3 chargers, a few hundred messages), in
seconds: the benchmark still runs, and what it measures was delivered correctly. Its
timings are not asserted: this machine is shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import upstream

pytestmark = pytest.mark.slow  # starts edge-csms processes, a cloud, and chargers


def test_upstream_benchmark_delivers_every_message_once_in_order(tmp_path: Path) -> None:
    argv = ["--chargers", "3", "--transactions", "2", "--meter-values", "30"]
    argv += ["--window", "2", "--interval", "0.5", "--out", str(tmp_path)]
    assert upstream.main(argv) == 0

    results = json.loads((tmp_path / "upstream.json").read_text())["results"]
    outage = results["outage"]
    check = outage["check"]
    assert check["ok"], check["first_problems"]
    # Per session: StartTransaction, 30 MeterValues, StopTransaction; more than the 50
    # rows the link reads at a time, so that read is exercised full.
    assert check["transaction_messages_sent"] == 3 * 2 * 32
    assert check["transaction_messages_received"] == check["transaction_messages_sent"]
    assert check["outbox_empty"] and outage["drain"]["complete"]
    assert outage["reconnect"]["all_connected"]
    # Per charger: Available for connectors 0 and 1, then 2 sessions of 36 messages.
    assert outage["outbox"]["rows"] == outage["fill"]["messages"] == 3 * (2 + 2 * 36)

    online = results["online"]
    assert online["on"]["check"]["ok"], online["on"]["check"]["first_problems"]
    assert online["on"]["caught_up"]
    assert online["off"]["messages"] > 0 and online["on"]["messages"] > 0
    assert "check" not in online["off"]  # no cloud link: nothing to check
    assert "## Outage and replay" in (tmp_path / "upstream.md").read_text()
    assert "### Cloud link" in (tmp_path / "upstream-readme.md").read_text()


def test_upstream_benchmark_profiles_the_drain(tmp_path: Path) -> None:
    argv = ["--chargers", "2", "--transactions", "1", "--meter-values", "60"]
    argv += ["--phases", "outage", "--profile"]
    assert upstream.main([*argv, "--out", str(tmp_path)]) == 0

    outage = json.loads((tmp_path / "upstream-profile.json").read_text())["results"]["outage"]
    assert outage["check"]["ok"], outage["check"]["first_problems"]
    focus = outage["profile"]["focus"]
    assert focus["edge/upstream/link.py:_send_next"]["calls"] > 0
    assert focus["edge/store/_outbox.py:pending"]["calls"] > 0
