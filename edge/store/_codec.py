"""Compact storage of OCPP sampledValue lists.

A MeterValue element with nine measurands is about 1 KiB of JSON, mostly the
same keys and enum strings every time. Deflate primed with a dictionary of
those strings stores it in under 100 bytes, which on an SD card is most of
the bytes written per MeterValues message and most of the journal's size.

Stored format: a first byte of ``\\x01`` means raw deflate with ``_DICTIONARY_V1``;
anything else is plain JSON (used when compressing does not help). The
dictionary is part of the on-disk format: never change it; add a ``\\x02``
format with a new one instead (a test pins its checksum).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

__all__ = ["decode_sampled_value", "encode_sampled_value"]

_V1 = b"\x01"
_WBITS = -15  # raw deflate: no zlib header or checksum (sqlite pages carry no CRC need)


def _dictionary_v1() -> bytes:
    def sv(**fields: str) -> bytes:
        return orjson.dumps({"value": "0", **fields})

    # Only the substrings matter, not which unit goes with which measurand.
    # zlib finds matches in the dictionary's last bytes most cheaply, so the
    # most common shapes come last.
    rare = [
        ("Temperature", "Celsius"),
        ("RPM", "Fahrenheit"),
        ("Frequency", "K"),
        ("Power.Factor", "varh"),
        ("Energy.Reactive.Import.Interval", "kvarh"),
        ("Energy.Active.Import.Interval", "kWh"),
        ("Energy.Reactive.Export.Interval", "VA"),
        ("Energy.Active.Export.Interval", "kVA"),
        ("Energy.Reactive.Import.Register", "var"),
        ("Energy.Reactive.Export.Register", "kvar"),
        ("Power.Reactive.Import", "kW"),
        ("Power.Reactive.Export", "W"),
        ("Power.Active.Export", "Wh"),
        ("Current.Export", "A"),
        ("Power.Offered", "V"),
        ("Current.Offered", "Percent"),
        ("Energy.Active.Export.Register", "Wh"),
    ]
    parts = [
        sv(context="Sample.Periodic", format="Raw", measurand=m, location="Outlet", unit=u)
        for m, u in rare
    ]
    for context in (
        "Interruption.Begin",
        "Interruption.End",
        "Other",
        "Trigger",
        "Sample.Clock",
        "Transaction.Begin",
        "Transaction.End",
    ):
        parts.append(sv(context=context, measurand="Energy.Active.Import.Register", unit="Wh"))
    for location in ("Body", "Cable", "Inlet", "EV"):
        parts.append(sv(measurand="SoC", location=location, unit="Percent"))
    parts.append(sv(format="SignedData", measurand="Energy.Active.Import.Register"))
    for phase in ("N", "L1-L2", "L2-L3", "L3-L1"):
        parts.append(
            sv(
                context="Sample.Periodic",
                measurand="Voltage",
                phase=phase,
                location="Outlet",
                unit="V",
            )
        )
    for phase in ("L1-N", "L2-N", "L3-N"):
        parts.append(sv(context="Sample.Periodic", measurand="Voltage", phase=phase, unit="V"))
    for phase in ("L1", "L2", "L3"):
        parts.append(
            sv(context="Sample.Periodic", measurand="Current.Import", phase=phase, unit="A")
        )
    parts.append(sv(context="Sample.Periodic", measurand="Power.Active.Import", unit="W"))
    parts.append(
        sv(context="Sample.Periodic", measurand="Energy.Active.Import.Register", unit="Wh")
    )
    return b",".join(parts)


_DICTIONARY_V1 = _dictionary_v1()


def encode_sampled_value(raw_json: bytes) -> bytes:
    """Return the stored form of a serialised sampledValue list."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, _WBITS, zdict=_DICTIONARY_V1)
    packed = _V1 + compressor.compress(raw_json) + compressor.flush()
    return packed if len(packed) < len(raw_json) else raw_json


def decode_sampled_value(stored: bytes) -> list[dict[str, Any]]:
    """Return the sampledValue list from its stored form."""
    if stored[:1] == _V1:
        decompressor = zlib.decompressobj(_WBITS, zdict=_DICTIONARY_V1)
        stored = decompressor.decompress(stored[1:]) + decompressor.flush()
    value: list[dict[str, Any]] = orjson.loads(stored)
    return value
