"""`python -m bench.security_connect` at its smallest (3 chargers per profile): it starts
the real service with a wss listener, connects profile 1 and profile 3 chargers and
reports a cost for each round. The timings are not asserted: this machine is shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import security_connect

pytestmark = pytest.mark.slow  # starts edge-csms


def test_smallest_run_reports_every_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    assert security_connect.main(["--chargers", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["chargers"] == 3 and set(result["rounds"]) == {"first", "again"}
    for row in result["rounds"].values():
        assert row["profile1_ms"] >= 0 and row["profile3_ms"] >= 0
    assert "| again |" in capsys.readouterr().out
