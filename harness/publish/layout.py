"""How a record is laid out in MLflow for comparison: the few tags, the record's facts as
params, the board (parent) run it is nested under, its dataset input, and the experiment's
kind and description. Pure functions of a record; no MLflow, no I/O.

The layout (``docs/leaderboard.md``, "What one run record becomes"):

- **Tags**: at most :data:`MAX_SARBENCH_TAGS` ``sarbench.*`` tags, the ones publishing
  itself needs (``key``, ``status``, ``board``, ``publishing``, ``published`` and, when
  there is something to say, ``publish_notes``) and the two a rescore changes (``scorer``,
  and ``rescored`` once rescored: :mod:`harness.publish.rescored`; a param could not
  change), plus MLflow's run name, note and ``mlflow.parentRunId``.
- **Params**: the entry's resolved options (:func:`harness.publish.content.params_of`),
  ``entry``, ``variant``, ``seed``, ``profile``, and every other fact of the record as
  ``sarbench.<name>`` (:func:`fields_of`). ``record.json`` (an artifact) holds the whole
  record.
- **Boards**: the runs that one board of the leaderboard may compare (one task, dataset,
  dataset digest, split, test, profile and conditions fingerprint) are nested under one
  parent run, the *board run* (:func:`board_of`).

Runs published before this layout carry every fact as a ``sarbench.*`` tag and their
resource figures without a prefix; :func:`read_back` reads both layouts the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.publish.content import (
    KEY,
    MAX_PARAM,
    MAX_TAG,
    RESOURCE_PREFIX,
    TAG,
    as_text,
    clip,
)
from harness.publish.rescored import score_tags
from harness.record import RunRecord, digest

STATUS = TAG + "status"
BOARD = TAG + "board"
"""On an entry run: the ID of the board it belongs to (:attr:`Board.id`)."""
BOARD_RUN = TAG + "board_run"
"""On a board (parent) run: the ID of its board. Entry runs never carry it."""
NOTES = TAG + "publish_notes"
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"
EXPERIMENT_KIND = "mlflow.experimentKind"
"""The experiment tag by which MLflow 3's UI tells a model-training experiment
(``custom_model_development``) from a GenAI one: newer UIs switch to their training view
for it. MLflow 3.17's UI still opens its GenAI view unless the address says
``workflowType=machine_learning`` (:data:`VIEW_PATH`) or the user picks *Model training*."""
TRAINING_KIND = "custom_model_development"
DATA_CONTEXT = "mlflow.data.context"
"""The dataset input's tag that says what the data was used for (MLflow's own key)."""
MAX_SARBENCH_TAGS = 8
"""At most this many ``sarbench.*`` tags on an entry run (the rest are params): ``key``,
``status``, ``board``, ``publishing`` and ``published`` always; ``scorer`` when the record
names its scorer version, ``publish_notes`` when there are notes, ``rescored`` once
rescored."""
DIGEST_CHARS = 12
"""How much of the dataset digest's hex names a dataset input (MLflow takes at most 36;
the leaderboard shows 12). The whole digest is the input's profile and a param."""
PLAIN_PARAMS = ("entry", "variant", "seed", "profile")
"""Facts published as params under their own names (as before this layout)."""


def fields_of(record: RunRecord) -> dict[str, str]:
    """The record's facts published as params ``sarbench.<name>`` (name -> text, clipped
    to MLflow's param limit). Not among them: what MLflow holds already (the run name is
    the run ID, the run's start and end are its times), the tags (the scorer and a rescore
    among them: they change), and the four plain params. A failed record's ``n_chips`` is
    0 and its ``ci_level`` empty."""
    entry, score = record.entry, record.score
    gpus = [
        str(g.get("name", "")) for g in record.machine.get("gpus") or [] if isinstance(g, Mapping)
    ]
    values: dict[str, Any] = {
        "team": entry.team,
        "baseline": entry.baseline,
        "task": record.task.name,
        "primary_metric": record.primary_metric,
        "higher_is_better": record.task.higher_is_better,
        "dataset": record.dataset,
        "dataset_digest": record.dataset_digest,
        "split": record.split,
        "test_kind": record.test_kind,
        "reason": record.reason or "",
        "detail": record.detail,
        "image_ref": record.image_ref or "",
        "image_digest": record.image_digest or "",
        "conditions": record.fingerprint,
        "backend": record.backend,
        "isolated": record.isolated,
        "mismatches": list(record.mismatches),
        "mismatch_allowed": record.mismatch_allowed,
        "cpu_model": record.machine.get("cpu_model", ""),
        "gpus": ", ".join(gpus),
        "host": record.host,
        "node": record.node,
        "n_chips": score.n_chips if score else 0,
        "ci_level": "" if score is None or score.level is None else score.level,
        "interval_note": "" if score is None else str(score.interval.get("note") or ""),
        "harness_version": record.harness_version,
        "checkpoint": record.checkpoint,
        "pretrained": "" if record.pretrained is None else record.pretrained,
        "ablation": dict(record.ablation) if record.ablation else "",
        "comparability": record.comparability.id,
    }
    return {name: clip(as_text(value), MAX_PARAM) for name, value in values.items()}


def tags_of(record: RunRecord, board: Board) -> dict[str, str]:
    """The tags an entry run is created with: the record's key, its status, its board,
    the scorer version (and rescore) of its score, the run name and the entry's
    description as the run's note. (``publishing`` and ``published`` are set by the
    publisher; ``mlflow.parentRunId`` once the board run is known.)"""
    return {
        KEY: record.key_hash,
        STATUS: record.status,
        BOARD: board.id,
        **score_tags(record),
        RUN_NAME: clip(record.run_id, MAX_TAG),
        NOTE: clip(record.entry.description, MAX_TAG),
    }


@dataclass(frozen=True)
class Board:
    """The runs one leaderboard board may compare: one task, dataset (and its digest),
    split, test, profile and conditions fingerprint. ``id`` digests these; ``name`` is the
    board run's name; ``params`` are its params."""

    id: str
    name: str
    params: dict[str, str]


def board_of(record: RunRecord) -> Board:
    """The board of a record (entries' pretrained checkpoints differ within one board: they
    are rows of it, never pooled)."""
    facts = {
        "task": record.task.name,
        "dataset": record.dataset,
        "dataset_digest": record.dataset_digest,
        "split": record.split,
        "test_kind": record.test_kind,
        "profile": record.profile_name,
        "conditions": record.fingerprint,
    }
    name = (
        f"{record.dataset} {record.split} ({record.test_kind} test) · profile "
        f"{record.profile_name or '?'} · dataset {_short(record.dataset_digest)} · "
        f"conditions {_short(record.fingerprint)}"
    )
    params = {
        **{f"{TAG}{k}": clip(v, MAX_PARAM) for k, v in facts.items()},
        f"{TAG}primary_metric": record.primary_metric,
        f"{TAG}higher_is_better": as_text(record.task.higher_is_better),
    }
    return Board(digest(facts), name, params)


def _short(value: str, n: int = 8) -> str:
    return value.split(":", 1)[-1][:n] or "?"


@dataclass(frozen=True)
class DatasetInput:
    """What an MLflow dataset input of a run holds (``mlflow.entities.Dataset`` fields and
    the ``mlflow.data.context`` tag)."""

    name: str
    digest: str
    source_type: str
    source: str
    profile: str
    context: str


def dataset_input_of(record: RunRecord, location: str) -> DatasetInput:
    """The dataset a record was scored on, as an MLflow dataset input: named after the
    dataset, its digest's first :data:`DIGEST_CHARS` hex characters as the digest, the
    whole digest as its profile, ``location`` (a ``file://`` URI of the folder that holds
    its files where this publisher runs) as its source, and the split scored as the
    context."""
    full = record.dataset_digest
    return DatasetInput(
        name=record.dataset,
        digest=full.split(":", 1)[-1][:DIGEST_CHARS],
        source_type="local",
        source=json.dumps({"uri": location}),
        profile=json.dumps({"digest": full}),
        context=record.split,
    )


def experiment_description(record: RunRecord) -> str:
    """The experiment's description (its ``mlflow.note.content``): what its runs are, how
    they are grouped, and where the numbers are."""
    primary = record.primary_metric
    better = "higher" if record.task.higher_is_better else "lower"
    return (
        f"SARBench, task {record.task.name} on dataset {record.dataset}: one run per run "
        "record (entry, variant, seed), published by `sarbench publish`.\n\n"
        "Runs are nested under a board run: one per split, test, conditions profile and "
        "dataset digest. Only runs of one board are comparable.\n\n"
        f"- Primary metric: `{primary}` ({better} is better); its 95% bootstrap interval: "
        f"`{primary}_ci_low`, `{primary}_ci_high`; the task's other metrics beside it.\n"
        f"- Resources (seconds, memory, GPU samples): metrics under `{RESOURCE_PREFIX}`.\n"
        "- Loss curves: metrics with steps, `loss…/<column>`; time columns under `time/`.\n"
        "- Params: the entry's resolved options, `entry`, `variant`, `seed`, `profile`, and "
        "the record's other facts as `sarbench.*`.\n"
        "- Dataset: the run's input (name, digest, split as context).\n"
        "- The ranking view (the primary metric, its interval and the training time as "
        f"columns, best first): `#/experiments/<this ID>/{VIEW_PATH}` after the UI's "
        "address; `sarbench publish` prints the link. MLflow 3.17's UI opens an experiment "
        "in its GenAI view: choose *Model training* at the top left, or use the link.\n"
        "- Artifacts: `record.json` (the whole record), configs, logs, per-chip scores, "
        "quicklooks.\n\n"
        "See docs/leaderboard.md in the SARBench repository."
    )


VIEW_KEY = "sarbench"
"""The share key of the experiment's saved view of its runs table: MLflow's UI opens
``#/experiments/<id>/runs?viewStateShareKey=sarbench`` with the view held in the
experiment tag :data:`VIEW_TAG` (where its "Share" button saves a view)."""
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_PATH = f"runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
"""The runs page in MLflow's model-training view (``workflowType``: MLflow 3.17's UI
otherwise opens its GenAI view, whatever the experiment's kind), with the saved view."""
LOCAL_UI = "http://127.0.0.1:5000"
"""Where ``mlflow ui`` serves by default."""


def ui_link(tracking_uri: str, experiment_id: str) -> str:
    """The address of an experiment's ranking view in MLflow's UI: on the tracking server
    itself for an ``http(s)`` URI, else on a local ``mlflow ui`` at its default address."""
    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/{VIEW_PATH}"


def _column(kind: str, name: str) -> str:
    """A runs-table column as MLflow's UI names it (``metrics.`iou```)."""
    return f"{kind}.`{name}`"


def shared_view(record: RunRecord) -> str:
    """The runs-table view of the record's experiment (JSON): the primary metric, its
    interval, the training time and the entry, variant and seed as columns beside the
    dataset, the best run first. (Without it the table shows no metric column.)"""
    primary = record.primary_metric
    columns = [
        _column("attributes", "Dataset"),
        _column("metrics", primary),
        _column("metrics", f"{primary}_ci_low"),
        _column("metrics", f"{primary}_ci_high"),
        _column("metrics", f"{RESOURCE_PREFIX}train_s"),
        *(_column("params", name) for name in ("entry", "variant", "seed")),
    ]
    view = {
        "orderByKey": _column("metrics", primary),
        "orderByAsc": not record.task.higher_is_better,
        "selectedColumns": columns,
    }
    return json.dumps(view, separators=(",", ":"))


@dataclass(frozen=True)
class ReadBack:
    """A published run as the leaderboard reads it, whatever the layout it was published
    in: ``fields`` as ``sarbench.<name>`` -> text (tags and ``sarbench.*`` params
    together), ``params`` the rest of the params (options and the plain four), ``metrics``
    with resource figures under their plain names (``train_s``, not ``system/train_s``)."""

    fields: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def read_back(
    tags: Mapping[str, str], params: Mapping[str, str], metrics: Mapping[str, float]
) -> ReadBack:
    """Read a published run back (see :class:`ReadBack`). A tag wins over a param of the
    same name (runs of the earlier layout hold every fact as a tag)."""
    fields = {k: v for k, v in params.items() if k.startswith(TAG)}
    fields.update({k: v for k, v in tags.items() if k.startswith(TAG)})
    rest = {k: v for k, v in params.items() if not k.startswith(TAG)}
    for name in PLAIN_PARAMS:
        if name in rest:
            fields.setdefault(TAG + name, rest[name])
    plain: dict[str, float] = {}
    for name, value in metrics.items():
        short = name.removeprefix(RESOURCE_PREFIX)
        plain[short if "/" not in short else name] = value
    return ReadBack(fields, rest, plain)
