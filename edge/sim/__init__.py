"""Simulators of a site: chargers on real WebSockets and a grid meter on real Modbus TCP.

- `edge.sim.charger`: `RawCharger`, a scripted charge point that sends raw OCPP-J frames
  and answers the CSMS's CALLs (written without `edge.ocppj`, so whoever drives the CSMS
  with it does not check our framing with itself);
- `edge.sim.site`: `SimCharger` (a charger that keeps its charging profiles and has an
  EV behind it that ramps, tapers and gives up) and `SimSite` (a real pymodbus SDM630
  showing base load plus every charger's draw, with a timeline of grid current);
- `edge.sim.demo_plan` (pure: the demo site's chargers, EVs coming and going, base load)
  and `edge.sim.demo` (`edge-csms demo`: the real service on such a site).

They live in the package, not under tests/, so that `edge-csms demo` runs them on an
installed service and the tests and the benchmarks drive the CSMS with the very same
code. The service itself (`edge-csms serve`) never imports them: only the `demo` command
does, when it runs (tests/edge/test_layering.py checks it).
"""
