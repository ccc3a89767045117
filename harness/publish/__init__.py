"""Publishing run records to MLflow, the store of record.

One MLflow experiment per task and dataset (``sarbench/<task>/<dataset>``), one MLflow run
per record (``<SARBENCH_HOME>/runs/<run_id>/record.json``). See ``docs/leaderboard.md``.
"""
