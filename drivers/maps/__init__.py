"""Register maps of the supported meters, one module per model (data only)."""

from drivers.maps.abb import ABB_B23
from drivers.maps.carlo_gavazzi import EM24
from drivers.maps.eastron import SDM72DM, SDM630
from drivers.maps.janitza import JANITZA_UMG604
from drivers.registers import RegisterMap

#: Register maps by the name used in ``[meter] driver = "…"``.
KNOWN_MODELS: dict[str, RegisterMap] = {
    m.model: m for m in (SDM630, SDM72DM, EM24, ABB_B23, JANITZA_UMG604)
}

__all__ = ["ABB_B23", "EM24", "JANITZA_UMG604", "KNOWN_MODELS", "SDM72DM", "SDM630"]
