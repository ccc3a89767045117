"""A published run whose record was rescored since (``sarbench rescore``): its new score
reaches MLflow without a new run.

The run's metrics are logged again at step 0 with the time of the update (MLflow shows
the latest value of a metric), ``scores/chips.csv`` is uploaded again (it replaces the
file of that name), and two tags say what happened: ``sarbench.scorer`` (the version
that made the score shown) and ``sarbench.rescored`` (the record's ``rescored`` as JSON:
when, the version before, the metrics before). Quicklooks stay: the predictions did not
change. The metric history keeps the value before beside the new one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.publish import content
from harness.record import RunRecord

SCORER_TAG = content.TAG + "scorer"
RESCORED_TAG = content.TAG + "rescored"
BATCH = 1000


def score_tags(record: RunRecord) -> dict[str, str]:
    """The tags that say which scorer made the record's score, and any rescore (the
    record's ``rescored`` as JSON)."""
    tags = {SCORER_TAG: record.scorer} if record.scorer else {}
    if record.rescored is not None:
        rescored = json.dumps(dict(record.rescored), sort_keys=True, allow_nan=False, default=str)
        tags[RESCORED_TAG] = content.clip(rescored, content.MAX_TAG)
    return tags


def behind(run: Any, record: RunRecord) -> bool:
    """Whether the published ``run`` shows an older score than ``record`` now has."""
    rescored = score_tags(record).get(RESCORED_TAG)
    return rescored is not None and run.data.tags.get(RESCORED_TAG) != rescored


def update_score(
    client: Any,
    mlflow_id: str,
    record: RunRecord,
    metrics: Mapping[str, float],
    scores: Sequence[Path],
) -> None:
    """Bring the published run ``mlflow_id`` to the rescored ``record``: ``metrics`` are
    its metrics (:func:`harness.publish.content.metrics_of`, checked), ``scores`` its
    per-chip scores files (``scores/chips.csv``), uploaded again."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, 0) for k, v in metrics.items()]
    for start in range(0, len(batch), BATCH):
        client.log_batch(mlflow_id, metrics=batch[start : start + BATCH])
    for path in scores:
        client.log_artifact(mlflow_id, str(path), "scores")
    client.log_batch(mlflow_id, tags=[RunTag(k, v) for k, v in score_tags(record).items()])
