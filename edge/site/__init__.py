"""Site load balancing: the grid meter, the control loop and what it shows.

- `controller`: the control loop (meter → allocation → lease profiles → chargers).
- `control`: what the loop knows of each charger, and the meter/report timing model.
- `caps`: operator caps on whole chargers, enforced inside the allocation.
- `report`: `GET /api/site` and the `edge_site_*` metrics, from a frozen snapshot.
- `commissioning`: building and probing the meter, judging the fallback values.

The mathematics is pure and lives in `profiles.allocation` and `profiles.lease`.
"""
