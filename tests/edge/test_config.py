"""Configuration file parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.config import ConfigError, load_config, parse_config


def test_no_file_gives_the_embedded_default() -> None:
    """Without a file the service runs on ./data, OCPP 9000, web 8080, no meter, no upstream."""
    cfg = load_config(None)
    assert cfg.storage.data_dir == Path("./data")
    assert (cfg.ocpp.port, cfg.web.port) == (9000, 8080)
    assert cfg.meter is None and cfg.upstream is None
    assert cfg.ocpp.unknown_chargers == "pending"


def test_documented_keys_are_read(tmp_path: Path) -> None:
    """Every key of the documented example is accepted and lands in the right field."""
    path = tmp_path / "c.toml"
    path.write_text(
        """
[ocpp]
host = "127.0.0.1"
port = 9100
unknown_chargers = "reject"
heartbeat_interval = 120
call_timeout = 10
[web]
port = 8181
api_token = "0123456789abcdef0123"
[storage]
data_dir = "state"
[meter]
driver = "sdm630"
transport = "rtu"
device = "/dev/ttyUSB1"
unit = 2
poll_interval = 0.5
stale_after = 5
[site]
max_current = [32, 32, 40]
margin = 1.5
fallback_current = 0
[chargers.CP001]
phases = "L2L3L1"
min_current = 6
max_current = 16
password = "averyverysecretpassword"
security_profile = 1
[upstream]
url = "wss://cloud.example/ocpp"
"""
    )
    cfg = load_config(path)
    assert cfg.ocpp.port == 9100 and cfg.ocpp.unknown_chargers == "reject"
    assert cfg.ocpp.call_timeout == 10.0
    assert cfg.storage.data_dir == tmp_path / "state"  # relative to the file
    assert cfg.meter is not None and cfg.meter.transport == "rtu" and cfg.meter.unit == 2
    assert cfg.site.max_current == (32.0, 32.0, 40.0)
    assert cfg.chargers["CP001"].phases == "L2L3L1"
    assert cfg.upstream is not None and cfg.upstream.url.startswith("wss://")


def test_all_problems_are_reported_together() -> None:
    """A file with several mistakes lists every one of them."""
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "ocpp": {"port": 70000, "unknown_chargers": "maybe", "bogus": 1},
                "site": {"max_current": [10, 10]},
                "chargers": {"CP1": {"min_current": 20, "max_current": 10}},
                "nonsense": {},
            }
        )
    text = "\n".join(info.value.problems)
    for fragment in (
        "ocpp.port",
        "ocpp.unknown_chargers",
        "ocpp.bogus: unknown key",
        "site.max_current",
        "chargers.CP1.min_current",
        "nonsense: unknown key",
    ):
        assert fragment in text


@pytest.mark.parametrize(
    "data",
    [
        {"web": {"api_token": "short"}},
        {"chargers": {"CP1": {"security_profile": 1}}},
        {"chargers": {"CP1": {"security_profile": 3}}},
        {"ocpp": {"tls": {"additional_certificate": "ec.pem"}}},
        {"chargers": {"CP1": {"security_profile": 2, "password": "0123456789abcdef"}}},
        {"security": {"relaxed_subject_checks": "yes"}},
        {"upstream": {"url": "http://x"}},
        {"ocpp": {"heartbeat_interval": True}},
    ],
)
def test_invalid_values_are_refused(data: dict[str, object]) -> None:
    """Weak tokens, missing passwords, TLS profiles without a TLS listener, half a second
    certificate and bad URLs are refused."""
    with pytest.raises(ConfigError):
        parse_config(data)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing or non-TOML file is reported, not raised as a traceback."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[ocpp\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`edge-csms check` exits 0 on a good file and 2 listing the problems of a bad one."""
    good = tmp_path / "good.toml"
    good.write_text("[ocpp]\nport = 9001\n")
    assert main(["check", "--config", str(good)]) == 0
    assert "configuration OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[ocpp]\nport = -1\n")
    assert main(["check", "--config", str(bad)]) == 2
    assert "ocpp.port" in capsys.readouterr().err


def test_site_control_keys_are_read_and_checked_against_the_meter() -> None:
    cfg = parse_config(
        {
            "meter": {"poll_interval": 0.5, "stale_after": 3},
            "site": {
                "lease_time": 90,
                "min_update_interval": 2,
                "hysteresis": 0.5,
                "rotation_period": 600,
            },
        }
    )
    assert (cfg.site.lease_time, cfg.site.min_update_interval) == (90.0, 2.0)
    assert (cfg.site.hysteresis, cfg.site.rotation_period) == (0.5, 600.0)
    with pytest.raises(ConfigError) as info:
        parse_config({"meter": {"poll_interval": 2, "stale_after": 1}, "site": {"lease_time": 6}})
    text = "\n".join(info.value.problems)
    assert "site.lease_time" in text and "meter.stale_after" in text
    # Without a meter there is no loop to pace: any lease time is fine.
    assert parse_config({"site": {"lease_time": 2}}).site.lease_time == 2.0


def test_max_pending_chargers_bounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`[ocpp] max_pending_chargers`: 50 by default, 0 to 10000, an integer; `check`
    shows it with the pending policy."""
    assert parse_config({}).ocpp.max_pending_chargers == 50
    assert parse_config({"ocpp": {"max_pending_chargers": 0}}).ocpp.max_pending_chargers == 0
    top = parse_config({"ocpp": {"max_pending_chargers": 10_000}})
    assert top.ocpp.max_pending_chargers == 10_000
    for bad in (-1, 10_001, 2.5, "50", True):
        with pytest.raises(ConfigError) as info:
            parse_config({"ocpp": {"max_pending_chargers": bad}})
        assert "ocpp.max_pending_chargers" in "\n".join(info.value.problems)
    path = tmp_path / "c.toml"
    path.write_text("[ocpp]\nmax_pending_chargers = 7\n")
    assert main(["check", "--config", str(path)]) == 0
    assert "unknown chargers: pending (at most 7 pending)" in capsys.readouterr().out
