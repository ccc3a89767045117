"""The submission path: a competitor's bundle, the maintainers' queue, quotas, result files.

- :mod:`~harness.competition.bundle`: ``sarbench submit`` writes one file (entry file,
  ``docker save`` of the validated image, the validation record, a manifest of digests);
  ``sarbench queue add`` checks it member by member.
- :mod:`~harness.competition.config`: ``competition.toml``, the benchmarks and their limits.
- :mod:`~harness.competition.store`: the queue's state in a database (SQLite or PostgreSQL).
- :mod:`~harness.competition.quotas`: scored test runs per team per day and in total.
- :mod:`~harness.competition.queue`: ``queue add`` and ``queue run``.
- :mod:`~harness.competition.results`: the result file a competitor gets back.

The whole path, for competitors and maintainers: ``docs/competing.md``.
"""
