"""The chargers the CSMS knows: their persisted document, runtime state and registry.

- `document`: `ChargerDoc`, the declared shape of what is persisted, and who owns each field.
- `model`: `Charger` (document + runtime state), `ConnectorState`, `Registration`.
- `registry`: `ChargerRegistry`, every charger by identity, and the only writer of documents.
"""

from edge.chargers.document import FIELD_OWNERS, ChargerDoc
from edge.chargers.model import BOOT_FIELDS, Charger, ConnectorState, Registration
from edge.chargers.registry import ChargerRegistry

__all__ = [
    "BOOT_FIELDS",
    "FIELD_OWNERS",
    "Charger",
    "ChargerDoc",
    "ChargerRegistry",
    "ConnectorState",
    "Registration",
]
