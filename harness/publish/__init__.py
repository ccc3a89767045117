"""Publishing run records to MLflow, the store of record.

One MLflow experiment per task and dataset (``sarbench/<task>/<dataset>``), one MLflow run
per record (``<SARBENCH_HOME>/runs/<run_id>/record.json``), the runs of one board nested
under a board run (:mod:`harness.publish.layout`, :mod:`harness.publish.boards`). See
``docs/leaderboard.md``.
"""
