"""Security events: the charger's SecurityEventNotification (TC_077's and TC_078's last
step) and the edge's own, journalled, logged on `edge.security`, counted and listed."""

from __future__ import annotations

import logging

import pytest

from edge.app import App
from edge.events import ChargerEvent, SecurityEventReceived
from edge.security.events import (
    CRITICAL_EVENTS,
    MAX_OTHER_TYPE_LABELS,
    STANDARD_EVENTS,
    is_critical,
    record_security_event,
)
from tests.conftest import Api
from tests.helpers import eventually, eventually_listed
from tests.security.certs_charger import sec_charger

CP = "SEC-EV"


def test_the_whitepaper_critical_events() -> None:
    """Seven of the Whitepaper's eighteen events are critical; vendor events are not."""
    assert len(STANDARD_EVENTS) == 18
    critical = {
        "FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot",
        "SecurityLogWasCleared", "MemoryExhaustion", "TamperDetectionActivated",
    }  # fmt: skip
    assert critical == CRITICAL_EVENTS
    assert not is_critical("InvalidChargePointCertificate")
    assert not is_critical("VendorSpecificThing")


def metric(app: App, event_type: str, critical: str) -> float:
    return app.services.metrics.value(
        "edge_security_events_total", type=event_type, critical=critical
    )


async def test_tc_077_charger_event_is_confirmed_recorded_and_counted(app: App, api: Api) -> None:
    """TC_077 (last steps): SecurityEventNotification(InvalidChargePointCertificate) is
    answered, journalled, listed for the charger and the site, counted as not critical."""
    async with sec_charger(app, CP) as cp:
        await cp.security_event("InvalidChargePointCertificate", "chain did not verify")
    [event] = await eventually_listed(api, "/api/security/events")
    assert event["chargerId"] == CP and event["type"] == "InvalidChargePointCertificate"
    assert event["critical"] is False and event["source"] == "charger"
    assert event["techInfo"] == "chain did not verify"
    detail = await api.get(f"/api/chargers/{CP}")
    assert [e["type"] for e in detail["securityEvents"]] == ["InvalidChargePointCertificate"]
    assert metric(app, "InvalidChargePointCertificate", "false") == 1
    _, text = await api.request("GET", "/metrics")
    assert (
        'edge_security_events_total{critical="false",type="InvalidChargePointCertificate"} 1'
        in text
    )
    journalled = await api.get(f"/api/chargers/{CP}/events?kind=SecurityEventNotification")
    assert journalled[0]["data"]["type"] == "InvalidChargePointCertificate"


async def test_critical_charger_event_is_a_warning(
    app: App, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A critical event (TamperDetectionActivated) is logged as a WARNING on edge.security,
    shows in the service's log, and is counted as critical; a control character in its
    text does not reach the log line."""
    caplog.set_level(logging.INFO, logger="edge.security")
    async with sec_charger(app, CP) as cp:
        await cp.security_event("TamperDetectionActivated", "door\nopened")
        await cp.security_event("ReconfigurationOfSecurityParameters")
    warnings = [r for r in caplog.records if r.name == "edge.security"]
    by_level = {r.levelno: r.getMessage() for r in warnings}
    assert "TamperDetectionActivated" in by_level[logging.WARNING]
    assert "door?opened" in by_level[logging.WARNING]
    assert "ReconfigurationOfSecurityParameters" in by_level[logging.INFO]
    assert metric(app, "TamperDetectionActivated", "true") == 1
    logged = await api.get("/api/log?level=WARNING")
    assert any("TamperDetectionActivated" in e["message"] for e in logged)
    critical = await eventually_listed(api, "/api/security/events?critical=true")
    assert [e["type"] for e in critical] == ["TamperDetectionActivated"]


async def test_edge_raised_event(app: App, api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """record_security_event: journalled as SecurityEvent, logged, counted, published,
    listed beside the chargers' events; `critical` given overrides the table."""
    seen: list[ChargerEvent] = []
    app.services.events.subscribe(seen.append)
    caplog.set_level(logging.INFO, logger="edge.security")
    entry = record_security_event(
        app.services, CP, "FailedToAuthenticateAtCentralSystem", "bad password"
    )
    assert entry == {
        "type": "FailedToAuthenticateAtCentralSystem",
        "critical": False,
        "techInfo": "bad password",
    }
    record_security_event(app.services, None, "ConnectionFlood", "from 192.0.2.7", critical=True)
    events = await eventually_listed(api, "/api/security/events", 2)
    assert [(e["type"], e["source"], e["critical"], e["chargerId"]) for e in events] == [
        ("ConnectionFlood", "edge", True, None),
        ("FailedToAuthenticateAtCentralSystem", "edge", False, CP),
    ]
    assert metric(app, "ConnectionFlood", "true") == 1
    published = [e for e in seen if isinstance(e, SecurityEventReceived)]
    assert [(e.charger_id, e.source, e.critical) for e in published] == [
        (CP, "edge", False),
        ("", "edge", True),
    ]
    levels = [r.levelno for r in caplog.records if r.name == "edge.security"]
    assert levels == [logging.INFO, logging.WARNING]
    mine = await eventually(lambda: api.get(f"/api/security/events?chargerId={CP}"))
    assert [e["type"] for e in mine] == ["FailedToAuthenticateAtCentralSystem"]
    assert (await api.request("GET", "/api/security/events", token=None))[0] == 401
    code, body = await api.request("GET", "/api/security/events?critical=maybe")
    assert code == 400 and body["error"] == "invalid_query"


async def test_metric_labels_are_bounded(app: App) -> None:
    """A charger inventing a new event type per message cannot grow the metrics: past a
    few dozen non-standard types, they are counted as "other", as is anything not
    name-like."""
    for n in range(MAX_OTHER_TYPE_LABELS + 10):
        record_security_event(app.services, CP, f"Invented{n}")
    record_security_event(app.services, CP, "InvalidMessages")
    record_security_event(app.services, CP, 'x"} 1\nfake_metric{a="')
    types = app.services.metrics.labels_seen("edge_security_events_total", "type")
    assert len(types) == MAX_OTHER_TYPE_LABELS + 2
    assert metric(app, "other", "false") == 11 and metric(app, "InvalidMessages", "false") == 1
    assert "fake_metric" not in app.services.metrics.render()
