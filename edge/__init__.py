"""edge-csms: site-level OCPP 1.6J central system."""
