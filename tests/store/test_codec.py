"""Stored form of sampledValue lists."""

from __future__ import annotations

import zlib

import orjson

from edge.store._codec import _DICTIONARY_V1, decode_sampled_value, encode_sampled_value

NINE = [
    {
        "value": "1234.5",
        "context": "Sample.Periodic",
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
    },
    {
        "value": "7200",
        "context": "Sample.Periodic",
        "measurand": "Power.Active.Import",
        "unit": "W",
    },
    *(
        {
            "value": "10.4",
            "context": "Sample.Periodic",
            "measurand": "Current.Import",
            "phase": p,
            "unit": "A",
        }
        for p in ("L1", "L2", "L3")
    ),
    *(
        {
            "value": "231",
            "context": "Sample.Periodic",
            "measurand": "Voltage",
            "phase": p,
            "unit": "V",
        }
        for p in ("L1-N", "L2-N", "L3-N")
    ),
    {"value": "57", "measurand": "SoC", "location": "EV", "unit": "Percent"},
]


def test_dictionary_never_changes() -> None:
    """The v1 dictionary is part of the file format: changing it would garble stored samples."""
    assert (zlib.crc32(_DICTIONARY_V1), len(_DICTIONARY_V1)) == (2291969018, 4339)


def test_typical_meter_value_is_stored_small_and_round_trips() -> None:
    """A nine-measurand element shrinks to under 100 bytes and decodes to the same list."""
    raw = orjson.dumps(NINE)
    stored = encode_sampled_value(raw)
    assert len(stored) < 100 < len(raw)
    assert decode_sampled_value(stored) == NINE


def test_incompressible_values_are_stored_as_json() -> None:
    """When deflate does not help, the JSON is stored as is and still decodes."""
    raw = orjson.dumps([{"v": "ü9$\x01qZ"}])
    for value in (b"[]", raw):
        stored = encode_sampled_value(value)
        assert stored == value
        assert decode_sampled_value(stored) == orjson.loads(value)
