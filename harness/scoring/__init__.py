"""Scoring: metrics, statistics, prediction validation and the `sarbench score` command.

- :mod:`harness.scoring.chipstats`: per-chip sufficient statistics (pure numpy, no I/O);
- :mod:`harness.scoring.metrics`: the metrics, as functions of those statistics;
- :mod:`harness.scoring.stats`: bootstrap confidence intervals, paired tests, seed summaries;
- :mod:`harness.scoring.validate`: checks a prediction folder before anything is scored;
- :mod:`harness.scoring.score`: reads predictions and labels and returns a ``ScoreResult``;
- :mod:`harness.scoring.cli`: the ``score`` click command.

The conventions (what each metric means, every edge case, the interval method) are written
down in ``docs/metrics.md``.
"""
