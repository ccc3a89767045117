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

SCORER_VERSION = "1"
"""The scorer's version, written on every record (``scorer``). Raise it with any change to
scoring that can change a recorded number (a metric's definition, the interval method or
its settings, which pixels count); then ``sarbench rescore`` re-scores the kept predictions
of every record made with another version, without running any container."""
