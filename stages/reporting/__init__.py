"""The report's statistics, claims, observations, tables and figures (the `report` stage's library)."""
