"""`export --render-check`: exported rows rendered with published chat templates, as transformers renders them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apigen_cli.stages.chat_template import ChatTemplate, TemplateSource, compile_template, load_template, read_calls
from apigen_cli.stages.export import export_rows

from .conftest import PROJECT, invoke, write_jsonl
from .test_export import bfcl_rows, irrelevance_row, results_row

TEMPLATES = PROJECT / "tests" / "fixtures" / "chat_templates"
QWEN25 = TEMPLATES / "Qwen2.5-7B-Instruct.jinja"
MISTRAL = TEMPLATES / "Mistral-Nemo-Instruct-2407.jinja"
QWEN3 = TEMPLATES / "Qwen3-0.6B.jinja"
DEEPSEEK = TEMPLATES / "DeepSeek-V3.1.jinja"
TOJSON_TEMPLATES = [QWEN25, MISTRAL]  # they write `arguments | tojson`, whatever `arguments` is


def template(path: Path) -> ChatTemplate:
    return ChatTemplate.from_file(str(path))


def rows() -> list[dict[str, Any]]:
    return [results_row(), irrelevance_row(), {**results_row(), "id": "w2", "final_answer": "Clear in Paris, snow in Oslo."}]


def exported(fmt: str, **options: Any) -> list[dict[str, Any]]:
    return list(export_rows([json.loads(json.dumps(row)) for row in rows()], fmt, with_results=True, **options))


def with_string_arguments(record: dict[str, Any]) -> dict[str, Any]:
    """The same conversation with each call's arguments as a JSON string, as OpenAI's fine-tuning API wants them."""
    record = json.loads(json.dumps(record))
    for message in record["messages"]:
        for call in message.get("tool_calls", []):
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
    return record


# --- the two forms against the published templates ----------------------------------------


@pytest.mark.parametrize("path", [QWEN25, MISTRAL, QWEN3], ids=lambda path: path.stem)
def test_messages_exports_render_and_their_calls_read_back(path: Path) -> None:
    chat = template(path)
    for record in exported("messages", system="You call tools."):
        assert chat.check(record) is None


@pytest.mark.parametrize("path", TOJSON_TEMPLATES, ids=lambda path: path.stem)
def test_string_arguments_come_out_quoted_twice_where_objects_come_out_once(path: Path) -> None:
    chat = template(path)
    record = exported("messages")[0]
    as_objects = chat.render(record["messages"], record["tools"])
    as_strings = chat.render(with_string_arguments(record)["messages"], record["tools"])
    assert '"arguments": {"city": "Paris"}' in as_objects
    assert '"arguments": "{\\"city\\": \\"Paris\\"}"' in as_strings  # what the model would learn to emit
    failure = chat.check(with_string_arguments(record))
    assert failure is not None and failure.code == "arguments_as_string"
    assert failure.message.startswith("call 1 (`get_weather`): the template wrote `arguments` as a JSON string")


def test_the_openai_export_is_quoted_twice_by_qwen25_and_refused_by_mistral() -> None:
    calls, irrelevance, _final = exported("openai")
    failure = template(QWEN25).check(calls)
    assert failure is not None and failure.code == "arguments_as_string"
    assert template(QWEN25).check(irrelevance) is None  # no calls, nothing to quote
    refused = template(MISTRAL).check(calls)
    assert refused is not None and refused.code == "render_error"
    assert refused.message == "the template fails: TemplateError: Tool call IDs should be alphanumeric strings with length 9!"


def test_a_template_that_checks_for_strings_takes_both_forms() -> None:
    record = exported("messages")[0]
    assert template(QWEN3).check(record) is None
    assert template(QWEN3).check(with_string_arguments(record)) is None


def test_a_template_that_adds_arguments_to_a_string_wants_strings_and_the_check_says_so() -> None:
    record = exported("messages")[0]
    failure = template(DEEPSEEK).check(record)
    assert failure is not None and failure.code == "wants_string_arguments"
    assert failure.message == 'the template fails: TypeError: can only concatenate str (not "dict") to str'
    assert template(DEEPSEEK).check(with_string_arguments(record)) is None
    assert template(DEEPSEEK).check(exported("messages")[1]) is None  # the irrelevance row has no arguments to add


def test_the_example_call_of_a_system_prompt_is_not_taken_for_a_call() -> None:
    record = exported("messages")[1]  # irrelevance: no calls at all
    text = template(QWEN25).render(record["messages"], record["tools"])
    assert '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' in text
    assert template(QWEN25).check(record) is None


def test_tool_results_that_look_like_calls_are_not_read_as_calls() -> None:
    row = {
        **results_row(),
        "execution_result": [{"name": "get_weather", "ok": True, "result": "<tool_call>not json</tool_call>"}, "ok"],
    }
    [record] = export_rows([row], "messages", with_results=True)
    assert "<tool_call>not json</tool_call>" in template(QWEN25).render(record["messages"], record["tools"])
    assert template(QWEN25).check(record) is None


def test_calls_that_differ_from_the_row_are_named() -> None:
    wrong_city = (
        "{% for m in messages %}{% for c in m.tool_calls or [] %}"
        '<tool_call>{"name": "{{ c.function.name }}", "arguments": {"city": "Bergen"}}</tool_call>'
        "{% endfor %}{% endfor %}"
    )
    failure = ChatTemplate(TemplateSource("wrong.jinja", wrong_city, {})).check(exported("messages")[0])
    assert failure is not None and failure.code == "calls_differ"
    assert (
        failure.message
        == 'call 1: rendered `get_weather` with {"city": "Bergen"}, the row has `get_weather` with {"city": "Paris"}'
    )
    first_only = "{% for m in messages %}{% if m.tool_calls %}<tool_call>{{ m.tool_calls[0].function | tojson }}</tool_call>{% endif %}{% endfor %}"
    short = ChatTemplate(TemplateSource("first.jinja", first_only, {})).check(exported("messages")[0])
    assert short is not None and short.message == "the rendered text holds 1 calls, the row 2"


@pytest.mark.corpus
@pytest.mark.parametrize("path", [QWEN25, MISTRAL, QWEN3], ids=lambda path: path.stem)
def test_every_bfcl_row_exported_as_messages_renders_with_its_calls(path: Path) -> None:
    chat = template(path)
    records = list(export_rows([dict(row) for row in bfcl_rows()], "messages"))
    failures = [(number, chat.check(record)) for number, record in enumerate(records, start=1)]
    assert [(number, failure) for number, failure in failures if failure is not None] == []


# --- reading calls back --------------------------------------------------------------------


def test_calls_are_read_in_the_encodings_of_the_families() -> None:
    assert read_calls('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call><tool_call>{"name": "g"}</tool_call>') == [
        ("f", {"a": 1}),
        ("g", None),
    ]
    assert read_calls('[TOOL_CALLS][{"name": "f", "arguments": {"a": [1, 2]}, "id": "abcdefghi"}]</s>') == [("f", {"a": [1, 2]})]
    assert read_calls('[TOOL_CALLS]f[ARGS]{"a": 1}</s>[TOOL_CALLS]g[ARGS]{}') == [("f", {"a": 1}), ("g", {})]
    begin, sep, end = "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>"
    assert read_calls(f'{begin}f{sep}{{"a": 1}}{end}') == [("f", {"a": 1})]
    assert read_calls(f'{begin}function{sep}f\n```json\n{{"a": 1}}\n```{end}') == [("f", {"a": 1})]
    assert read_calls("plain text") is None


def test_a_call_that_is_not_json_is_a_failure_not_a_crash() -> None:
    chat = ChatTemplate(
        TemplateSource(
            "broken.jinja",
            "{% for m in messages %}{% if m.tool_calls %}<tool_call>{{ m.tool_calls[0].function.name }}</tool_call>{% endif %}{% endfor %}",
            {},
        )
    )
    failure = chat.check(exported("messages")[0])
    assert failure is not None and failure.code == "unreadable_call"
    assert failure.message.startswith("a <tool_call> block is not JSON")
    unknown = ChatTemplate(TemplateSource("plain.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}", {}))
    missing = unknown.check(exported("messages")[0])
    assert missing is not None and missing.code == "no_calls_found"
    assert unknown.check(exported("messages")[1]) is None


# --- the environment, as transformers sets it up ----------------------------------------------


def test_tojson_is_transformers_one_not_jinjas() -> None:
    value = {"b": "é <b>&'", "a": [1, 2.5, None, True]}
    assert compile_template("{{ x | tojson }}").render(x=value) == '{"b": "é <b>&\'", "a": [1, 2.5, null, true]}'
    assert compile_template("{{ x | tojson(indent=2) }}").render(x={"a": 1}) == '{\n  "a": 1\n}'
    assert compile_template("{{ x | tojson(ensure_ascii=True, sort_keys=True) }}").render(x=value).startswith('{"a": [1')


def test_blocks_are_trimmed_and_the_helpers_are_there() -> None:
    assert compile_template("{% if true %}\n  a\n{% endif %}\nb").render() == "  a\nb"
    assert compile_template("{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}").render() == "1"
    assert compile_template("{% generation %}kept{% endgeneration %}").render() == "kept"
    clock = compile_template("{{ strftime_now('%d %b %Y') }}", now=lambda: datetime(2024, 7, 26))
    assert clock.render() == "26 Jul 2024"
    chat = ChatTemplate(TemplateSource("strict.jinja", "{{ raise_exception('only user turns, please') }}", {}))
    failure = chat.check(exported("messages")[0])
    assert failure is not None and failure.message == "the template fails: TemplateError: only user turns, please"


def test_the_sandbox_keeps_a_template_from_reaching_python() -> None:
    chat = ChatTemplate(TemplateSource("evil.jinja", "{{ messages.__class__.__mro__[1].__subclasses__() }}", {}))
    failure = chat.check(exported("messages")[0])
    assert failure is not None and failure.code == "render_error" and "SecurityError" in failure.message


def test_a_tokenizer_config_gives_the_tool_use_template_and_its_special_tokens(tmp_path: Path) -> None:
    config = {
        "bos_token": {"content": "<s>", "lstrip": False},
        "eos_token": "</s>",
        "chat_template": [
            {"name": "default", "template": "default"},
            {"name": "tool_use", "template": MISTRAL.read_text()},
        ],
    }
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps(config))
    source = load_template(str(path))
    assert (source.name, source.special_tokens) == ("tokenizer_config.json", {"bos_token": "<s>", "eos_token": "</s>"})
    record = exported("messages")[0]
    text = ChatTemplate(source).render(record["messages"], record["tools"])
    assert text.startswith("<s>[AVAILABLE_TOOLS]") and '"id": "c00000001"}]</s>[TOOL_RESULTS]' in text
    assert ChatTemplate(source).check(record) is None
    assert load_template(str(QWEN25)).special_tokens == {"bos_token": "", "eos_token": ""}


# --- the command ---------------------------------------------------------------------------------


def test_cli_render_check_passes_and_says_so(tmp_path: Path, runner: CliRunner) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", rows())
    output = tmp_path / "train.jsonl"
    result = invoke(
        runner, "export", str(source), "--format", "messages", "--with-results", "--render-check", str(QWEN25), "-o", str(output)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "export: 3 rows written as messages (1 irrelevance)\n"
        "render check: 3 rows render with `Qwen2.5-7B-Instruct.jinja` and their calls read back\n"
    )
    assert len(output.read_text().splitlines()) == 3


def test_cli_render_check_fails_the_openai_export_with_qwen25_naming_the_row_and_the_flag(
    tmp_path: Path, runner: CliRunner
) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", [irrelevance_row(), *rows()])
    out = tmp_path / "out.jsonl"
    result = invoke(runner, "export", str(source), "--format", "openai", "--render-check", str(QWEN25), "-o", str(out))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: 2 of 4 exported rows fail the render check with `Qwen2.5-7B-Instruct.jinja` (arguments_as_string 2); "
        'the first, row 2: call 1 (`get_weather`): the template wrote `arguments` as a JSON string, "{\\"city\\": \\"Paris\\"}", '
        "not as an object: it applies `tojson` to arguments given as a string; "
        f"what was written is kept in `{out}.partial` (4 rows); `{out}` is left as it was"
    )
    assert not out.exists() and len(Path(f"{out}.partial").read_text().splitlines()) == 4  # there to be looked at
    assert lines[2] == "hint: export with `--format messages`, which writes `arguments` as objects"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "xlam", "--render-check", str(QWEN25)], "error: `--render-check` does not apply to `--format xlam`"),
        (["--format", "messages", "--render-check", "missing.jinja"], "error: template file `missing.jinja` does not exist"),
    ],
)
def test_cli_render_check_errors(runner: CliRunner, arguments: list[str], message: str) -> None:
    result = invoke(runner, "export", *arguments, input="")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[0] == message
    assert result.stderr.splitlines()[2].startswith("hint: ")


def test_cli_a_template_that_does_not_compile_is_named(tmp_path: Path, runner: CliRunner) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}\n{{ m.content }\n")
    result = invoke(runner, "export", "--format", "messages", "--render-check", str(broken), input="")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("error: the chat template `broken.jinja` does not compile: ")
    assert "(line 2)" in result.stderr.splitlines()[0]


def test_cli_string_arguments_are_what_deepseek_reads_and_what_qwen25_quotes_twice(tmp_path: Path, runner: CliRunner) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", rows())
    as_objects = invoke(
        runner, "export", str(source), "--format", "messages", "--render-check", str(DEEPSEEK), "-o", str(tmp_path / "a")
    )
    assert as_objects.exit_code == 2
    assert as_objects.stderr.splitlines()[0].startswith(
        "error: 2 of 3 exported rows fail the render check with `DeepSeek-V3.1.jinja` (wants_string_arguments 2)"
    )
    assert as_objects.stderr.splitlines()[2] == (
        "hint: the template adds `arguments` to a string (DeepSeek's do): export with `--format messages --string-arguments`"
    )
    arguments = ["export", str(source), "--format", "messages", "--with-results", "--string-arguments", "-o", str(tmp_path / "b")]
    as_strings = invoke(runner, *arguments, "--render-check", str(DEEPSEEK))
    assert as_strings.exit_code == 0, as_strings.stderr
    assert as_strings.stderr.splitlines()[1] == "render check: 3 rows render with `DeepSeek-V3.1.jinja` and their calls read back"
    quoted = invoke(runner, *arguments, "--render-check", str(QWEN25))
    assert quoted.exit_code == 2 and "(arguments_as_string 2)" in quoted.stderr
    refused = invoke(runner, "export", str(source), "--format", "openai", "--string-arguments")
    assert refused.stderr.splitlines()[0] == "error: `--string-arguments` does not apply to `--format openai`"
