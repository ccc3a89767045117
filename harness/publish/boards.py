"""Board runs: the parent run under which the entry runs of one board are nested, and the
experiment's kind and description.

One board run per board (:func:`harness.publish.layout.board_of`: task, dataset and digest,
split, test, profile, conditions), not per publish: every run that the leaderboard may
compare with another sits under one parent, whichever ``sarbench publish`` brought it
(our choice: a parent per publish would split one board's runs over as many parents as
there were publishes, and put runs that must not be compared side by side).

Finding or making the board run follows the entry runs' rule for many writers
(:mod:`harness.publish.mlflow_store`): two publishers may both find no board run and both
make one. After creating its entry run a publisher *settles* the board: it keeps the first
board run (oldest ``sarbench.publishing``, then smallest run ID), deletes the others, and
nests every entry run of the board that sits under a deleted board run, or under one it
has just deleted, under the first. The last publisher to settle sees every board run and
every entry run, so the board ends with one parent. (One window is left: a publisher that
read an entry run just before another re-nested it may nest it under a board run the
other then deletes; any later publish to that board settles it again.) A SQLite store's
publishers take turns under its lock and never make two board runs.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from harness.publish.layout import (
    BOARD,
    BOARD_RUN,
    DATA_CONTEXT,
    EXPERIMENT_KIND,
    NOTE,
    PARENT,
    RUN_NAME,
    TRAINING_KIND,
    VIEW_TAG,
    Board,
    DatasetInput,
    experiment_description,
    shared_view,
)
from harness.record import RunRecord

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PUBLISHING = "sarbench.publishing"
"""When a run's publishing began (milliseconds since the epoch, the publisher's clock)."""
MAX_COPIES = 1000
"""At most this many runs of one key (or board runs of one board) are looked at."""
PAGE = 1000
DEFAULT_EXPERIMENT = "0"
BOARD_NOTE = (
    "A board: the runs nested under this one are comparable (one task, dataset and digest, "
    "split, test, conditions profile). Open it to compare its entries."
)


def publishing_began(run: Any) -> int | None:
    """When publishing ``run`` began (its :data:`PUBLISHING` tag); None when it does not
    say (a run from before the tag, or a tag that is not a number)."""
    try:
        return int(run.data.tags.get(PUBLISHING))
    except (TypeError, ValueError):
        return None


def publish_order(run: Any) -> tuple[int, str]:
    """Runs of one key (or board runs of one board) in the order publishing keeps them:
    the oldest start of publishing first (none, from before the tag: oldest), then the
    smallest MLflow run ID."""
    return (publishing_began(run) or 0, run.info.run_id)


def delete_run(client: MlflowClient, run_id: str) -> None:
    """Delete a run (soft, as MLflow does); one another publisher deleted already is no
    error."""
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        client.delete_run(run_id)


DATASET_TRIES = 5
"""How often logging a dataset input is tried (see :func:`log_dataset`)."""


def log_dataset(client: MlflowClient, run_id: str, data: DatasetInput) -> None:
    """Log ``data`` as the dataset input of run ``run_id``.

    An experiment holds each dataset (name and digest) once, and MLflow's store looks for
    it, then inserts it, in two steps: two writers logging a new dataset at once on a
    tracking server can both insert, and the second fails on the store's unique key (seen
    on PostgreSQL). Tried again, it finds the dataset the first inserted; so a refusal is
    tried again, up to :data:`DATASET_TRIES` times in all."""
    from mlflow.entities import Dataset, InputTag
    from mlflow.entities import DatasetInput as MlflowInput
    from mlflow.exceptions import MlflowException

    dataset = Dataset(data.name, data.digest, data.source_type, data.source, None, data.profile)
    inputs = [MlflowInput(dataset, [InputTag(DATA_CONTEXT, data.context)])]
    for attempt in range(DATASET_TRIES):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException:
            if attempt == DATASET_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def describe_experiment(
    client: MlflowClient, exp_id: str, tags: dict[str, str], record: RunRecord
) -> None:
    """Set the experiment's kind (model training, so that MLflow 3's UI opens its runs),
    description and saved runs-table view where they differ from what they should be (an
    experiment made before this layout keeps its runs; a description someone edited in
    the UI is replaced)."""
    wanted = {
        EXPERIMENT_KIND: TRAINING_KIND,
        NOTE: experiment_description(record),
        VIEW_TAG: shared_view(record),
    }
    from mlflow.exceptions import MlflowException

    for key, value in wanted.items():
        if tags.get(key) == value:
            continue
        try:
            client.set_experiment_tag(exp_id, key, value)
        except MlflowException:  # another publisher setting it at once (a unique key)
            if client.get_experiment(exp_id).tags.get(key) != value:
                raise


def hide_default_experiment(client: MlflowClient) -> bool:
    """Delete MLflow's ``Default`` experiment (ID 0, made with every new store) when it
    holds no run at all; whether it was deleted. (A deleted experiment is not listed;
    ``mlflow gc`` removes it for good. MLflow does not make it again: a store with any
    experiment, deleted ones included, gets no new Default.)"""
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    try:
        default = client.get_experiment(DEFAULT_EXPERIMENT)
    except MlflowException:
        return False
    if default.name != "Default" or default.lifecycle_stage != "active":
        return False
    runs = client.search_runs([DEFAULT_EXPERIMENT], run_view_type=ViewType.ALL, max_results=1)
    if runs:
        return False
    client.delete_experiment(DEFAULT_EXPERIMENT)
    return True


class BoardRuns:
    """Finds, makes and settles the board runs of one tracking store."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    def _parents(self, exp_id: str, board: Board) -> list[Any]:
        return list(
            self.client.search_runs(
                [exp_id], f"tags.`{BOARD_RUN}` = '{board.id}'", max_results=MAX_COPIES
            )
        )

    def _first(self, exp_id: str, board: Board) -> str | None:
        """The MLflow run ID of the board's first board run; None when it has none."""
        found = self._parents(exp_id, board)
        return str(min(found, key=publish_order).info.run_id) if found else None

    def parent(self, exp_id: str, board: Board, data: DatasetInput) -> str:
        """The MLflow run ID of the board's run: the first found, or a new one."""
        return self._first(exp_id, board) or self._create(exp_id, board, data)

    def _create(self, exp_id: str, board: Board, data: DatasetInput) -> str:
        """A new board run; or, when another publisher settling the board deleted it while
        it was being made (another board run is first), that first board run."""
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        now = int(time.time() * 1000)
        tags = {BOARD_RUN: board.id, PUBLISHING: str(now), RUN_NAME: board.name, NOTE: BOARD_NOTE}
        run = self.client.create_run(exp_id, start_time=now, tags=tags, run_name=board.name)
        run_id = str(run.info.run_id)
        try:
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in board.params.items()])
            log_dataset(self.client, run_id, data)
            self.client.set_terminated(run_id, "FINISHED", end_time=now)
        except MlflowException:
            first = self._first(exp_id, board) if self._gone(run_id) else None
            if first is None:
                raise
            return first
        return run_id

    def settle(self, exp_id: str, board: Board, my_parent: str | None) -> None:
        """Leave the board one board run with every entry run nested under it (see the
        module docstring). ``my_parent`` is the board run of the entry run this publisher
        made or found: when the board has one board run and it is that one, there is
        nothing to do."""
        parents = self._parents(exp_id, board)
        if not parents:
            return
        first = min(parents, key=publish_order)
        if len(parents) == 1 and first.info.run_id == my_parent:
            return
        known = {p.info.run_id for p in parents}
        for run in parents:
            if run.info.run_id != first.info.run_id:
                delete_run(self.client, run.info.run_id)
        gone: dict[str, bool] = {}
        for child in self._children(exp_id, board):
            now = child.data.tags.get(PARENT)
            if now == first.info.run_id:
                continue
            if now is None or now in known or gone.setdefault(now, self._gone(now)):
                self._nest(child.info.run_id, first.info.run_id)

    def _children(self, exp_id: str, board: Board) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs(
                [exp_id], f"tags.`{BOARD}` = '{board.id}'", max_results=PAGE, page_token=token
            )
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def _nest(self, run_id: str, parent: str) -> None:
        """Nest run ``run_id`` under ``parent``; a run another publisher has just deleted
        (a duplicate of its record) is left as it is."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.set_tag(run_id, PARENT, parent)
        except MlflowException:
            if not self._gone(run_id):
                raise

    def _gone(self, run_id: str) -> bool:
        """Whether run ``run_id`` is deleted or does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).info.lifecycle_stage != "active"
        except MlflowException:
            return True
