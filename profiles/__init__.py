"""Smart-charging mathematics: charging profiles, composite schedules, load allocation (pure)."""
