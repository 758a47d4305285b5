"""The link to the fleet operator's cloud central system (DESIGN §7).

- `rules`: pure: what goes next, id rewriting, back-off;
- `link`: one charger's OCPP 1.6J connection, the edge acting as that charger;
- `commands`: the cloud's commands relayed to the charger through the command pipeline;
- `manager`: every charger's link, started on demand, and `GET /api/upstream`.

The outbox itself is in the journal (`edge.store._outbox`): a charger's message for the
cloud is written in the same commit as its journal record, before the charger's answer.
"""

from edge.upstream.manager import Upstream

__all__ = ["Upstream"]
