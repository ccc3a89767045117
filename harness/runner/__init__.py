"""Running entries and recording the runs.

- :mod:`~harness.runner.plan`: run plans, plain data (entry x variant x seed x dataset);
- :mod:`~harness.runner.run`: one run, from staging to its record;
- :mod:`~harness.runner.records`: run records (atomic, never overwritten) and run locks;
- :mod:`~harness.runner.validate`: ``sarbench validate`` on the val split;
- :mod:`~harness.runner.cli`: the ``run`` and ``validate`` commands.
"""
