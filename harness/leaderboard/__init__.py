"""The static leaderboard site, built from MLflow only (see ``docs/leaderboard.md``)."""
