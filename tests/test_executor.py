"""The executor: real worker processes running tests/fixtures/exec_library.py, and what they contain."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apigen_cli import Executor, ExecutorOptions, FunctionsError
from apigen_cli.execution.calls import Outcome
from apigen_cli.execution.environment import worker_environment

from .processes import alive

FIXTURES = Path(__file__).parent / "fixtures"
LIBRARY = FIXTURES / "exec_library.py"


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    """One pool for the module: the misbehaving calls also show that later calls still run."""
    with Executor(LIBRARY, ExecutorOptions(workers=2, timeout=1.0, memory_mb=512)) as running:
        yield running


def run(executor: Executor, name: str, **arguments: object) -> Outcome:
    return executor.run(name, arguments)


# --- correct calls ----------------------------------------------------------------------


def test_correct_call_returns_its_result(executor: Executor) -> None:
    assert run(executor, "add", a=2, b=3) == Outcome(True, 5)
    assert run(executor, "add", a=2) == Outcome(True, 2)  # the function's default applies


def test_arguments_bind_by_keyword_whatever_their_order(executor: Executor) -> None:
    assert run(executor, "subtract", a=10, b=3).result == 7
    assert run(executor, "subtract", b=3, a=10).result == 7


def test_strings_stay_strings_and_nothing_is_evaluated(executor: Executor) -> None:
    assert run(executor, "echo", value="__import__('os').getpid()").result == "__import__('os').getpid()"
    assert run(executor, "kind_of", value="1+1").result == "str"
    assert run(executor, "kind_of", value=[1, 2]).result == "list"


def test_async_functions_are_awaited(executor: Executor) -> None:
    assert run(executor, "async_add", a=1, b=2).result == 3


def test_results_become_json_values(executor: Executor) -> None:
    result = run(executor, "kinds").result
    assert result == {
        "tuple": [1, 2],
        "set": [1, 2, 3],
        "date": "2024-02-29",
        "datetime": "2024-02-29T13:45:00",
        "decimal": "12.50",
        "dataclass": {"x": 1, "y": 2},
        "namedtuple": {"left": "a", "right": "b"},
        "bytes": "café",
        "enum": "red",
        "nan": "NaN",
        "generator": [0, 1, 4],
        "opaque": "<Opaque thing>",
        "int_keys": {"1": "one"},
    }


def test_long_results_are_truncated_and_say_so(executor: Executor) -> None:
    outcome = run(executor, "long_text", size=10_000)
    assert outcome.ok and outcome.truncated
    assert outcome.result.startswith("x" * 4000) and "truncated, 10000 characters" in outcome.result
    assert run(executor, "long_text", size=10).truncated is False


def test_the_library_is_imported_once_and_its_worker_reused() -> None:
    with Executor(LIBRARY, ExecutorOptions(workers=1)) as single:
        first, second = single.run("pid", {}), single.run("pid", {})
        assert first.result == second.result != os.getpid()
        assert [single.run("remember", {"value": n}).result for n in (7, 8, 9)] == [1, 2, 3]


# --- failing calls ----------------------------------------------------------------------


def test_a_raising_call_reports_the_exception_type_and_where(executor: Executor) -> None:
    outcome = run(executor, "fail", message="no such city")
    assert (outcome.ok, outcome.code, outcome.error_type) == (False, "exception", "ValueError")
    assert outcome.message.startswith("no such city (at exec_library.py:")


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("subtract", {"a": 1}, "missing a required argument: 'b'"),
        ("subtract", {"a": 1, "b": 2, "c": 3}, "got an unexpected keyword argument 'c'"),
        ("positional_only", {"a": 1}, "positional"),
    ],
)
def test_arguments_that_do_not_bind_are_invalid_arguments(
    executor: Executor, name: str, arguments: dict[str, object], expected: str
) -> None:
    outcome = executor.run(name, arguments)
    assert (outcome.code, outcome.error_type) == ("invalid_arguments", "TypeError")
    assert expected in outcome.message


def test_a_type_error_inside_the_function_is_an_exception_not_a_binding_problem(executor: Executor) -> None:
    assert run(executor, "raise_type_error").code == "exception"
    assert run(executor, "anything", whatever=1).result == {"whatever": 1}


# --- what isolation contains --------------------------------------------------------------


def test_an_endless_loop_times_out_and_the_next_calls_run(executor: Executor) -> None:
    started = time.monotonic()
    outcome = run(executor, "loop_forever")
    elapsed = time.monotonic() - started
    assert (outcome.code, outcome.error_type) == ("timeout", "Timeout")
    assert "1 s timeout" in outcome.message
    assert elapsed < 5  # the timeout is 1 s
    assert run(executor, "add", a=1, b=1).result == 2


def test_calls_queued_behind_a_timed_out_call_are_run_again_elsewhere() -> None:
    with Executor(LIBRARY, ExecutorOptions(workers=1, timeout=0.5)) as single:
        loop = single.submit("loop_forever", {})
        queued = [single.submit("add", {"a": n, "b": 1}) for n in range(20)]
        single.wait([loop, *queued])
        assert loop.outcome is not None and loop.outcome.code == "timeout"
        assert [pending.outcome.result for pending in queued if pending.outcome] == [n + 1 for n in range(20)]


def test_a_timeout_kills_what_the_function_started(executor: Executor, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    assert run(executor, "loop_with_child", pid_file=str(pid_file)).code == "timeout"
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(child):
        time.sleep(0.05)
    assert not alive(child)


def test_a_memory_bomb_is_stopped_by_the_memory_limit(executor: Executor) -> None:
    outcome = run(executor, "memory_bomb")
    assert (outcome.code, outcome.error_type) == ("memory_limit", "MemoryError")
    assert run(executor, "add", a=2, b=2).result == 4


@pytest.mark.parametrize(
    ("name", "error_type", "text"),
    [
        ("segfault", "SIGSEGV", "killed by SIGSEGV"),
        ("hard_exit", "ProcessExit", "exited with status 7"),
        ("soft_exit", "SystemExit", "sys.exit(3)"),
        ("interrupt", "KeyboardInterrupt", "KeyboardInterrupt"),
    ],
)
def test_a_function_that_ends_its_process_is_crashed_and_later_calls_run(
    executor: Executor, name: str, error_type: str, text: str
) -> None:
    outcome = run(executor, name)
    assert (outcome.code, outcome.error_type) == ("crashed", error_type)
    assert text in outcome.message
    assert run(executor, "add", a=3, b=4).result == 7


def test_what_a_function_prints_is_captured_never_returned() -> None:
    lines: list[str] = []
    with Executor(LIBRARY, ExecutorOptions(workers=1, on_output=lines.append)) as single:
        assert single.run("chatty", {"n": 5}).result == 5
        single.run("sleep_then", {"seconds": 0.2, "value": 1})  # lets the output arrive
    assert {"CHATTY OUTPUT 5", "CHATTY RAW FD1", "CHATTY DUNDER"} <= set(lines)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("system", "is imported from `posix`"),
        ("sqrt", "is imported from `math`"),
        ("json", "is the module `json`"),
        ("Helper", "is a class"),
        ("CONSTANT", "is not a function"),
        ("eval", "is a Python builtin"),
        ("open", "is a Python builtin"),
        ("_private_helper", "is private"),
        ("os.system", "no function `os.system`"),
        ("nonexistent", "no function `nonexistent` is defined"),
    ],
)
def test_names_that_are_not_library_functions_are_never_run(executor: Executor, name: str, reason: str) -> None:
    outcome = executor.run(name, {"command": "echo never"})
    assert (outcome.code, outcome.error_type) == ("no_implementation", "NoImplementation")
    assert reason in outcome.message


def test_an_imported_function_is_never_executed(executor: Executor, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    assert executor.run("system", {"command": f"touch {marker}"}).code == "no_implementation"
    assert not marker.exists()


# --- name resolution ----------------------------------------------------------------------


def test_a_package_resolves_dotted_names_inside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(FIXTURES))
    with Executor("exec_package", ExecutorOptions(workers=1)) as package:
        for name in ("math_toolkit.sum_of_multiples", "exec_package.math_toolkit.sum_of_multiples", "sum_of_multiples"):
            assert package.run(name, {"limit": 10, "divisors": [3, 5]}).result == 23
        assert package.run("text.shout", {"text": "hi"}).result == "HI!"
        assert package.run("version", {}).result == "1.0"
        ambiguous = package.run("shared", {})
        assert ambiguous.code == "no_implementation"
        assert "`math_toolkit.shared` or `text.shared`" in ambiguous.message
        assert package.run("text.shared", {}).result == "text"
        assert package.run("_internal.hidden", {}).code == "no_implementation"


def test_a_folder_imports_each_public_module(tmp_path: Path) -> None:
    with Executor(FIXTURES / "exec_folder", ExecutorOptions(workers=1)) as folder:
        assert folder.run("quadruple", {"n": 3}).result == 12
        assert folder.run("beta.double", {"n": 3}).result == 6
        assert folder.run("alpha.double", {"n": 3}).result == 6  # imported from beta: still a function of the library
        ambiguous = folder.run("shared", {})
        assert ambiguous.code == "no_implementation" and "`alpha.shared` or `beta.shared`" in ambiguous.message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(:\n    pass\n", "SyntaxError: invalid syntax"),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
        ("x = 1\nraise RuntimeError('config missing')\n", "RuntimeError: config missing"),
        ("import sys\nsys.exit(4)\n", "the library called sys.exit(4) while being imported"),
        ("CONSTANT = 1\n", "defines no public function"),
    ],
)
def test_a_library_that_cannot_load_is_one_clear_error(tmp_path: Path, source: str, expected: str) -> None:
    library = tmp_path / "broken_tools.py"
    library.write_text(source)
    with pytest.raises(FunctionsError) as caught:
        Executor(library, ExecutorOptions(workers=2)).start()
    assert f"`{library}`" in caught.value.message
    assert expected in caught.value.message
    assert caught.value.hint


def test_the_failing_line_of_the_library_is_named(tmp_path: Path) -> None:
    library = tmp_path / "broken_tools.py"
    library.write_text("def f():\n    return 1\n\nvalue = {}['missing']\n")
    with pytest.raises(FunctionsError, match=r"KeyError: 'missing' \(.*broken_tools.py, line 4\)"):
        Executor(library, ExecutorOptions(workers=1)).start()


def test_missing_paths_and_shadowing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(FunctionsError, match="does not exist"):
        Executor(tmp_path / "nope.py").start()
    shadow = tmp_path / "json.py"
    shadow.write_text("def f():\n    return 1\n")
    with pytest.raises(FunctionsError, match="has the name of the module `json`"):
        Executor(shadow, ExecutorOptions(workers=1)).start()


def test_a_library_that_hangs_at_import_is_an_error(tmp_path: Path) -> None:
    library = tmp_path / "slow_tools.py"
    library.write_text("import time\ntime.sleep(30)\n\ndef f():\n    return 1\n")
    started = time.monotonic()
    with pytest.raises(FunctionsError, match="did not finish within 0.5 s"):
        Executor(library, ExecutorOptions(workers=1, startup_timeout=0.5)).start()
    assert time.monotonic() - started < 5


# --- environment --------------------------------------------------------------------------


def test_user_code_gets_the_base_variables_and_what_is_passed_nothing_else() -> None:
    environ = {
        "PATH": "/bin",
        "LANG": "C",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/src",
        "MY_API_KEY": "k",
        "DATABASE_URL": "postgres://app:pw@db/app",  # secrets whose names say nothing of them
        "MYPASS": "hunter2",
        "HF_AUTH": "hf_x",
        "SESSION_COOKIE": "c",
        "HTTPS_PROXY": "http://user:pw@proxy:3128",
        "AWS_SECRET_ACCESS_KEY": "s",
        "APIGEN_MODEL": "m",
    }
    env = worker_environment(environ)
    assert {name for name in environ if name in env} == {"PATH", "LANG", "LC_ALL", "PYTHONPATH"}
    assert env["PYTHONHASHSEED"] == "0" and env["OMP_NUM_THREADS"] == "1"
    kept = worker_environment(environ, ["DATABASE_URL", "AWS_*"])
    assert kept["DATABASE_URL"] == environ["DATABASE_URL"] and kept["AWS_SECRET_ACCESS_KEY"] == "s" and "MYPASS" not in kept


def test_a_function_sees_only_what_is_passed_and_what_it_sends_back_of_it_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEATHER_API_KEY", "sk-test-123")
    monkeypatch.setenv("HARMLESS_SETTING", "on")
    monkeypatch.setenv("APIGEN_API_KEY", "sk-apigen-own-key-0123")
    with Executor(LIBRARY, ExecutorOptions(workers=1)) as scrubbed:
        assert scrubbed.run("getenv", {"name": "WEATHER_API_KEY"}).result is None
        assert scrubbed.run("getenv", {"name": "HARMLESS_SETTING"}).result is None
        assert scrubbed.run("echo", {"value": "key: sk-apigen-own-key-0123"}).result == "key: ***"
    passing = ("WEATHER_API_KEY", "HARMLESS_SETTING", "APIGEN_API_KEY")
    with Executor(LIBRARY, ExecutorOptions(workers=1, pass_env=passing)) as passed:
        assert passed.run("getenv", {"name": "WEATHER_API_KEY"}).result == "***"  # handed out, never sent back
        assert passed.run("getenv", {"name": "APIGEN_API_KEY"}).result == "***"
        assert passed.run("getenv", {"name": "HARMLESS_SETTING"}).result == "on"  # too short to tell from text


def test_without_a_library_a_python_call_has_no_implementation() -> None:
    with Executor(None) as bare:
        outcome = bare.run("add", {"a": 1})
    assert outcome.code == "no_implementation" and "`--functions`" in outcome.message


def test_an_exception_whose_message_itself_fails_is_still_an_exception(tmp_path: Path) -> None:
    library = tmp_path / "odd.py"
    library.write_text(
        "class Weird(Exception):\n    def __str__(self):\n        raise RuntimeError('no words')\n\n"
        "def grumpy():\n    raise Weird()\n"
    )
    with Executor(str(library), ExecutorOptions(workers=1, timeout=5)) as executor:
        outcome = executor.run("grumpy", {})
    assert (outcome.ok, outcome.code, outcome.error_type) == (False, "exception", "odd.Weird")
