"""Site meter drivers."""
