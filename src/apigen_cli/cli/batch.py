"""Provider batches: the `--batch` settings of the LLM commands, and `apigen batch` to show or
cancel the batches a `--batch` command left beside its output."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Optional

import orjson
import typer

from ..config import LLMSettings
from ..console import Messages
from ..errors import ConfigError
from ..llm.service import LLMClient
from ..wording import counted
from .main import app, errors_to_exit_codes
from .options import VerboseOpt

if TYPE_CHECKING:  # llm/batch.py loads only when `--batch` or `batch ...` is asked
    from ..llm.batch import BatchBackend, BatchEntry, BatchSettings


# --- batch (`--batch`, `--batch-dir`): a stage's requests as provider batches (llm/batch.py) ---


def batch_settings(params: Mapping[str, Any], output: str) -> BatchSettings | None:
    """The BatchSettings the batch settings ask for, or None without `--batch` / `--batch-dir` (``params``: resolved values)."""
    if not params["batch_dir"] and not params["batch"]:
        return None  # before importing llm/batch.py, which a run without batches never needs
    from ..llm.batch import BatchSettings, state_path

    limits = {
        "max_requests": params["batch_max_requests"],
        "max_bytes": params["batch_max_bytes"],
        "poll_seconds": params["batch_poll_seconds"],
    }
    if params["batch_dir"]:
        return BatchSettings(folder=params["batch_dir"], **limits)
    if not params["batch"]:
        return None
    if output == "-":
        raise ConfigError(
            "`--batch` needs `-o FILE`: its batches are remembered beside the output, so that a rerun picks them up",
            hint="pass `-o FILE` (batches can take hours), or leave `--batch` out",
        )
    return BatchSettings(state_file=state_path(output), **limits)


def say_batches(messages: Messages, chat: LLMClient) -> dict[str, dict[str, int]]:
    """Say which stages ran as batches, with their tokens; the same for the report."""
    backend = chat.batches
    if backend is None:
        return {}
    from ..llm.batch import summary, summary_lines

    stages = summary(backend.state.batches)
    for line in summary_lines(stages):
        messages.info(line)
    return stages


# --- batch status / batch cancel: the batches a `--batch` command left beside its output ---

batch_app = typer.Typer(name="batch", help="Show or cancel the provider batches of a `--batch` run.", no_args_is_help=True)
app.add_typer(batch_app)

BatchOutputArg = Annotated[str, typer.Argument(metavar="OUTPUT", help="The `-o FILE` of the command that ran with `--batch`.")]
BatchBaseUrlOpt = Annotated[
    Optional[str],
    typer.Option("--base-url", envvar="APIGEN_BASE_URL", metavar="URL", help="The endpoint [default: the one the run used]."),
]


BatchApiKeyEnvOpt = Annotated[
    Optional[str],
    typer.Option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (default: APIGEN_API_KEY)."),
]


def _batch_backend(output: str, base_url: str | None, api_key_env: str | None) -> BatchBackend:
    """The batch backend over the state beside ``output``; ConfigError when there is none."""
    from ..llm.batch import BatchBackend, BatchSettings, BatchState, state_path
    from ..llm.http_backend import normalise_base_url

    path = state_path(output)
    state = BatchState.load(path)
    if not os.path.exists(path):
        raise ConfigError(
            f"no batches are recorded for `{output}` (`{path}` is absent)",
            hint="name the output file (`-o FILE`) of a command that ran with batches",
        )
    url = base_url or state.base_url
    if not url:
        raise ConfigError(f"`{path}` does not say which endpoint its batches are at", hint="pass `--base-url URL`")
    settings = LLMSettings(base_url=url, api_key_env=api_key_env)
    backend = BatchBackend(settings, BatchSettings(state_file=path), base_url=normalise_base_url(url))
    backend.refused_hint = "check `--base-url`: the batches are at the endpoint the run used"
    return backend


def _batch_line(entry: BatchEntry) -> str:
    counts = entry.counts
    total = counts.get("total") or len(entry.custom_ids)
    return (
        f"{entry.id or '(not created)'}  {entry.stage}  {entry.model}  {entry.status}  "
        f"{counts.get('completed', 0)}/{total} done  {counts.get('failed', 0)} failed"
    )


@batch_app.command("status")
def batch_status(
    output: BatchOutputArg,
    refresh: Annotated[
        bool, typer.Option("--refresh/--no-refresh", help="Ask the provider for the state of unfinished batches first.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per batch.")] = False,
    base_url: BatchBaseUrlOpt = None,
    api_key_env: BatchApiKeyEnvOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the batches of a `--batch` run: id, stage, model, status, requests done and failed.

    Examples:

        apigen batch status data.jsonl

        apigen batch status data.jsonl --no-refresh --json | jq -r .status
    """
    messages = Messages(verbose=verbose)
    with errors_to_exit_codes(messages):
        backend = _batch_backend(output, base_url, api_key_env)
        try:
            if refresh:
                backend.refresh()
        finally:
            backend.close()
        entries = backend.state.batches
    if as_json:
        sys.stdout.buffer.write(
            b"".join(orjson.dumps(vars(entry) | {"custom_ids": len(entry.custom_ids)}) + b"\n" for entry in entries)
        )
        sys.stdout.flush()
        return
    for entry in entries:
        typer.echo(_batch_line(entry))


@batch_app.command("cancel")
def batch_cancel(
    output: BatchOutputArg,
    base_url: BatchBaseUrlOpt = None,
    api_key_env: BatchApiKeyEnvOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Cancel the unfinished batches of a `--batch` run; a rerun then rejects their requests as `llm_error`.

    Examples:

        apigen batch cancel data.jsonl

        apigen batch cancel data.jsonl --base-url https://api.openai.com/v1
    """
    messages = Messages(verbose=verbose)
    with errors_to_exit_codes(messages):
        backend = _batch_backend(output, base_url, api_key_env)
        try:
            cancelled = backend.cancel()
        finally:
            backend.close()
    for entry in cancelled:
        typer.echo(_batch_line(entry))
    messages.info(f"batch cancel: {counted(len(cancelled), 'batch', 'batches')} cancelled")
