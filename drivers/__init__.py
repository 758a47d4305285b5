"""Site meter drivers: Modbus meters described as data, read by one generic reader.

Public API::

    open_meter(driver, **meter_config) -> Meter      # [meter] section → a Meter
    KNOWN_MODELS                                     # driver name → RegisterMap
    Meter, MeterReading                              # protocol and snapshot
    ModbusMeter, SimulatedMeter, serve_meter         # implementations, test server
    MeterError, MeterConnectionError, MeterTimeout, MeterProtocolError, MeterConfigError
"""

from drivers.errors import (
    MeterConfigError,
    MeterConnectionError,
    MeterError,
    MeterProtocolError,
    MeterTimeout,
)
from drivers.maps import KNOWN_MODELS
from drivers.modbus_meter import ModbusMeter, open_meter
from drivers.reading import Meter, MeterReading
from drivers.registers import Register, RegisterMap
from drivers.simulated import MeterServer, SimulatedMeter, serve_meter

__all__ = [
    "KNOWN_MODELS",
    "Meter",
    "MeterConfigError",
    "MeterConnectionError",
    "MeterError",
    "MeterProtocolError",
    "MeterReading",
    "MeterServer",
    "MeterTimeout",
    "ModbusMeter",
    "Register",
    "RegisterMap",
    "SimulatedMeter",
    "open_meter",
    "serve_meter",
]
