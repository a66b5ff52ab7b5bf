"""The multi-turn commands: conversations checked against the real state of a stateful environment."""

from __future__ import annotations

from contextlib import ExitStack

import typer

from ..console import Messages
from ..conversations.trajectory_check import trajectory_check as trajectory_check_rows
from ..errors import ConfigError
from .main import app
from .options import STAGE_IO_GROUP, executor_and_policy, resolved_settings, setting_options, with_options
from .stages import StageRun, run_stage_command


@app.command("trajectory-check")
@with_options(STAGE_IO_GROUP, setting_options("execution"))
def trajectory_check(ctx: typer.Context) -> None:
    """Replay each conversation on its environment; keep it only when the state and what it told the user are right.

    Each row names its environment (`"environment": {"ClassName": {initial state}}`,
    the classes coming from `--functions`), its chat `messages`, the gold `actions`
    and optional `outputs`. The gold actions and the conversation's own calls are
    replayed on fresh instances, in worker processes; the row is kept when both end
    in the same state, every output was told, and every tool message says what the
    environment says. A kept row gets per-call labels backed by state.

    Examples:

        apigen trajectory-check sample_data/store/conversations.jsonl --functions sample_data/store -o verified.jsonl --rejects failed.jsonl

        apigen trajectory-check conversations.jsonl --functions my_env.py --exec-timeout 5 --keep-rejected | jq -c '{id, reason}'
    """

    def setup(messages: Messages, resources: ExitStack) -> StageRun:
        if not resolved_settings(ctx).values.get("functions"):
            raise ConfigError(
                "trajectory-check replays each conversation on the environment's classes, and no `--functions` names them",
                hint="pass `--functions FILE_OR_FOLDER`, the Python code that defines the classes the rows' `environment` names",
            )
        executor, _policy = executor_and_policy(ctx, messages)
        resources.callback(executor.close)
        executor.start()
        return StageRun(lambda rows: trajectory_check_rows(rows, executor))

    run_stage_command("trajectory-check", ctx.params, setup)
