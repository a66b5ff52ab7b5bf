"""The offline backend (``--model offline``): a stand-in model with no network.

It exists so that the README demo, the tests and CI run end to end without an
LLM. Real datasets need a real model: these queries come from templates.

It reads the structured task a stage puts in ``ChatRequest.offline_task``:

- ``{"task": "generate", "tools", "style", "pairs", "seed"}``: it answers the JSON a
  generator model would, a list of ``{"query", "answers"}`` pairs in the style
  asked (simple, multiple, parallel, parallel_multiple). Arguments are filled
  from the parameter schemas (enums, ranges, realistic values chosen by name and
  type) and every value is written into the query. A seeded share of pairs
  (``offline_error_rate``, default 0.1) carries a typical model mistake: a wrong
  type, a missing required argument, an invented tool, an out-of-range value.
- ``{"task": "blueprint", ...}``: a task blueprint for a stateful environment (see
  ``offline_blueprint``).
- ``{"task": "judge", "tools", "query", "answers", "execution_result"}``: it answers
  ``{"thought", "pass"}`` by plain rules: every call names an offered tool and ran
  without error, no result is error-shaped (exec-check's rule, ``rows.results``),
  no result is empty when the query asks for something back, every argument value
  appears in the query.

Everything is deterministic for a given seed (and the same request).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import orjson

from ..errors import ConfigError
from ..problems import Problem, RowProblem
from ..rows.results import ErrorShapes, is_empty_result
from ..schema.tools import Tool, compile_tool
from ..schema.value_types import AnyType, ArrayType, ObjectType, ScalarType, Type, UnionType
from .chat import OFFLINE_MODEL, ChatRequest, ChatResult, UsageByModel

T = TypeVar("T")

STYLES = ("simple", "multiple", "parallel", "parallel_multiple")
DEFAULT_ERROR_RATE = 0.1
MISTAKES = ("wrong_type", "missing_required_argument", "invented_tool", "out_of_range")


def error_rate_from(options: Mapping[str, Any] | None, default: float = DEFAULT_ERROR_RATE) -> float:
    """The ``offline_error_rate`` option, checked to lie in [0, 1]."""
    value = (options or {}).get("offline_error_rate", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(
            f"`offline_error_rate` should be a number from 0 to 1, got {value!r}", hint="for example `-O offline_error_rate=0.1`"
        )
    return float(value)


class TaskWriter(Protocol):
    """Writes the reply to one more kind of task (``offline_blueprint.blueprint``), built on this module's value makers."""

    def __call__(self, task: Mapping[str, Any], *, key: str, seed: int | None, error_rate: float) -> str: ...


class OfflineBackend:
    """Answers one request at a time, at once; no state but its settings.

    ``writers`` answer the tasks other modules add (by the task's name): they build on this
    module, so it cannot import them; the service that makes the backend hands them over.
    """

    def __init__(
        self, *, seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE, writers: Mapping[str, TaskWriter] | None = None
    ) -> None:
        self.seed = seed
        self.error_rate = error_rate
        self.writers = dict(writers or {})

    def answer(self, request: ChatRequest) -> ChatResult:
        started = time.monotonic()
        task = request.offline_task
        if not isinstance(task, dict):
            return _failed("the offline model needs the request's structured task (`offline_task`); it cannot read free text")
        kind = task.get("task")
        try:
            if kind == "generate":
                error_rate = error_rate_from(request.options, self.error_rate) if request.options else self.error_rate
                text = generate(task, key=request.key, seed=self.seed, error_rate=error_rate)
            elif kind == "judge":
                text = orjson.dumps(judge(task)).decode()
            elif isinstance(kind, str) and kind in self.writers:
                error_rate = error_rate_from(request.options, self.error_rate) if request.options else self.error_rate
                text = self.writers[kind](task, key=request.key, seed=self.seed, error_rate=error_rate)
            else:
                known = ", ".join(f"`{name}`" for name in ("generate", "judge", *self.writers))
                return _failed(f"the offline model does not know the task {kind!r} (it knows {known})")
        except _TaskError as error:
            return _failed(str(error))
        return ChatResult(text, latency=time.monotonic() - started)


class OfflineChatService:
    """The offline backend as a ChatService of its own (no thread, no network)."""

    def __init__(
        self, *, seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE, writers: Mapping[str, TaskWriter] | None = None
    ) -> None:
        self.backend = OfflineBackend(seed=seed, error_rate=error_rate, writers=writers)
        self.usage = UsageByModel()

    def map(self, items: Iterable[tuple[T, ChatRequest]]) -> Iterator[tuple[T, ChatResult]]:
        for item, request in items:
            result = self.backend.answer(request)
            self.usage.add(request.model or OFFLINE_MODEL, result)
            yield item, result

    def close(self) -> None:
        pass


class _TaskError(Exception):
    """A task the offline model cannot work on; becomes the result's ``llm_error``."""


def _failed(message: str) -> ChatResult:
    return ChatResult(None, Problem("llm_error", f"offline: {message}"))


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _compiled_tools(definitions: Any) -> list[Tool]:
    definitions = _decoded(definitions)
    if not isinstance(definitions, list):
        raise _TaskError("the task's `tools` should be a list of tool definitions")
    tools = []
    for position, definition in enumerate(definitions, start=1):
        try:
            tools.append(compile_tool(definition, position))
        except RowProblem:
            continue  # a model would ignore a tool it cannot read; so does this one
    return tools


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


# --- generating -----------------------------------------------------------------------


def generate(task: Mapping[str, Any], *, key: str = "", seed: int | None = None, error_rate: float = DEFAULT_ERROR_RATE) -> str:
    """The JSON text of ``pairs`` generated ``{"query", "answers"}`` pairs for ``task``."""
    tools = _compiled_tools(task.get("tools"))
    if not tools:
        raise _TaskError("none of the task's tools can be read, so there is nothing to call")
    style = task.get("style", "simple")
    if style not in STYLES:
        raise _TaskError(f"unknown query style {style!r} (known: {', '.join(STYLES)})")
    count = task.get("pairs", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _TaskError(f"`pairs` should be a positive whole number, got {count!r}")
    if "error_rate" in task:
        error_rate = float(task["error_rate"])
    task_seed = task.get("seed", seed)
    rng = _rng(task_seed if task_seed is not None else 0, key, task.get("tools"), style, count)
    writer = _Writer(rng)
    pairs = []
    for _ in range(count):
        query, calls = writer.pair(tools, style)
        if error_rate > 0 and rng.random() < error_rate:
            _make_mistake(rng, tools, calls)
        pairs.append({"query": query, "answers": [{"name": name, "arguments": arguments} for name, arguments in calls]})
    return orjson.dumps(pairs).decode()


_LEADS_ASKING = ("Can you", "Could you", "Would you", "Can you please")
_LEADS_TELLING = ("Please", "I need to", "I'd like to", "Help me", "I want to")
_ARGUMENT_FORMS = ("{name} {value}", "{value} as the {name}", "{name} set to {value}", "the {name} {value}")
# fmt: off
_KNOWN_VERBS = frozenset({
    "get", "fetch", "retrieve", "find", "search", "calculate", "compute", "convert", "create", "list", "check", "send",
    "return", "generate", "translate", "book", "lookup", "update", "delete", "add", "set", "analyze", "analyse",
    "estimate", "predict", "count", "validate", "verify", "extract", "determine", "query", "provide", "show", "play",
    "schedule", "make", "download", "upload", "recommend", "obtain", "measure", "compare", "format", "parse", "encode",
    "decode", "sort", "merge", "filter", "split", "reverse", "remove", "summarize", "summarise", "look", "post", "read",
    "write", "open", "close", "start", "stop", "cancel", "reserve", "order", "buy", "sell", "track", "detect",
    "identify", "classify", "rank", "score", "evaluate", "simulate", "plot", "draw", "solve", "integrate",
    "differentiate", "multiply", "divide", "sum", "subtract", "round", "normalize", "normalise", "resize", "compress",
    "scan", "monitor", "notify", "register", "login", "locate", "run", "perform", "suggest", "assess", "transfer", "pay",
    "print", "display", "compose", "edit", "apply", "test", "forecast", "discover", "explore", "invest", "plan", "rate"
})
_DETERMINERS = frozenset({"a", "an", "the", "all", "any", "some", "information", "details", "data", "list", "current", "specific",
                          "given", "multiple", "one", "two", "live", "real-time", "detailed", "various", "new", "recent"})
# fmt: on


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _readable(name: str) -> str:
    if name == "is_id":  # xLAM's spelling of `id`, a Python builtin
        return "ID"
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ").replace(".", " ")
    return " ".join(spaced.split()).lower() or name


def _imperative(word: str) -> str:
    lowered = word.lower()
    if lowered in ("return", "returns", "give", "gives", "provide", "provides", "retrieves"):
        return "get"
    if lowered in _KNOWN_VERBS:
        return lowered
    for ending, replacement in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("xes", "x")):
        if lowered.endswith(ending) and lowered[: -len(ending)] + replacement in _KNOWN_VERBS:
            return lowered[: -len(ending)] + replacement
    if lowered.endswith("s") and lowered[:-1] in _KNOWN_VERBS:
        return lowered[:-1]
    return ""


def _guessed_verb(first: str, second: str) -> str:
    """An unknown first word followed by a determiner is most likely a verb: "Runs a test" -> "run"."""
    lowered = first.lower()
    if second.lower() not in _DETERMINERS or not lowered.isalpha():
        return ""
    if lowered.endswith("ies"):
        return lowered[:-3] + "y"
    if lowered.endswith(("ches", "shes", "sses", "xes")):
        return lowered[:-2]
    if lowered.endswith("s") and not lowered.endswith("ss"):
        return lowered[:-1]
    return lowered


def _purpose(tool: Tool) -> str:
    """What calling the tool does, as an imperative phrase: "convert an amount of money …"."""
    description = " ".join(tool.description.split())
    sentence = re.split(r"(?<=[a-z]{3}[.!?])\s", description, maxsplit=1)[0].rstrip(".!? ") if description else ""
    if len(sentence) > 140:
        sentence = sentence[:140].rsplit(" ", 1)[0]
    if sentence:
        first, _, rest = sentence.partition(" ")
        verb = _imperative(first) or _guessed_verb(first, rest.partition(" ")[0])
        if verb:
            return f"{verb} {rest}".strip()
        if first.lower() in ("this", "the", "a", "an") and rest:
            lowered = sentence[0].lower() + sentence[1:]
            return f"use {_readable(tool.name)} ({lowered})"
        lowered = sentence if first.isupper() and len(first) > 1 else sentence[0].lower() + sentence[1:]
        return f"get the {lowered}"
    words = _readable(tool.name)
    head, _, tail = words.partition(" ")
    verb = _imperative(head)
    return f"{verb} {tail}".strip() if verb else f"use {words}"


def _mention(value: Any) -> str:
    """How a value is written in a query, so that the judge finds it there."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.1f}" if value.is_integer() else repr(value)
    if isinstance(value, list):
        parts = [_mention(item) for item in value if item is not None]
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    if isinstance(value, dict):
        return ", ".join(f"{_readable(key)} {_mention(item)}" for key, item in value.items() if item is not None)
    return str(value)


class _Writer:
    """Writes one pair at a time from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.values = _Values(rng)

    def pair(self, tools: list[Tool], style: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        rng = self.rng
        if style == "parallel_multiple" and len(tools) < 2:
            style = "parallel"
        if style in ("simple", "multiple"):
            tool = tools[0] if style == "simple" else rng.choice(tools)
            arguments = self.values.arguments(tool)
            return self._ask(tool, arguments), [(tool.name, arguments)]
        if style == "parallel":
            tool = rng.choice(tools)
            calls = self._distinct_calls(tool, rng.randint(2, 4))
            return self._ask_parallel(tool, [arguments for _name, arguments in calls]), calls
        chosen = rng.sample(tools, min(len(tools), rng.randint(2, 3)))
        calls = [(tool.name, self.values.arguments(tool)) for tool in chosen]
        if len(calls) < 4 and rng.random() < 0.3:
            extra = rng.choice(chosen)
            calls.append((extra.name, self.values.arguments(extra)))
        by_name = {tool.name: tool for tool in chosen}
        return self._ask_several([(by_name[name], arguments) for name, arguments in calls]), calls

    def _distinct_calls(self, tool: Tool, count: int) -> list[tuple[str, dict[str, Any]]]:
        calls: list[tuple[str, dict[str, Any]]] = []
        seen: set[bytes] = set()
        for _ in range(count * 4):
            arguments = self.values.arguments(tool)
            fingerprint = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)
            if fingerprint not in seen or not arguments:
                seen.add(fingerprint)
                calls.append((tool.name, arguments))
            if len(calls) == count:
                break
        return calls

    def _argument_text(self, arguments: dict[str, Any]) -> str:
        parts = []
        for name, value in arguments.items():
            if value is None:
                continue
            if isinstance(value, bool):
                parts.append(f"{_readable(name)} {'turned on' if value else 'turned off'}")
                continue
            form = self.rng.choice(_ARGUMENT_FORMS)
            parts.append(form.format(name=_readable(name), value=_mention(value)))
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    def _ask(self, tool: Tool, arguments: dict[str, Any]) -> str:
        rng = self.rng
        purpose = _purpose(tool)
        details = self._argument_text(arguments)
        template = rng.randrange(5)
        if not details:
            return f"{rng.choice(_LEADS_ASKING)} {purpose}?" if template % 2 else f"{rng.choice(_LEADS_TELLING)} {purpose}."
        if template == 0:
            return f"{rng.choice(_LEADS_ASKING)} {purpose} with {details}?"
        if template == 1:
            return f"{rng.choice(_LEADS_TELLING)} {purpose}, using {details}."
        if template == 2:
            return f"{_capital(purpose)} for {details}, please."
        if template == 3:
            return f"I'm working on something and need to {purpose}. Use {details}."
        return f"With {details}: {purpose}. What do you get?"

    def _ask_parallel(self, tool: Tool, calls: list[dict[str, Any]]) -> str:
        rng = self.rng
        purpose = _purpose(tool)
        details = [self._argument_text(arguments) or "the defaults" for arguments in calls]
        if rng.random() < 0.5:
            listed = "; ".join(f"({index}) {text}" for index, text in enumerate(details, start=1))
            return f"{rng.choice(_LEADS_TELLING)} {purpose} {len(calls)} times: {listed}."
        joined = ", then with ".join(details)
        return f"{rng.choice(_LEADS_ASKING)} {purpose} first with {joined}?"

    def _ask_several(self, calls: list[tuple[Tool, dict[str, Any]]]) -> str:
        rng = self.rng
        sentences = []
        openers = ("First", "Next", "Then", "Also", "Finally")
        for index, (tool, arguments) in enumerate(calls):
            details = self._argument_text(arguments)
            opener = openers[min(index, 3)] if index < len(calls) - 1 or index == 0 else openers[4]
            sentences.append(f"{opener}, {_purpose(tool)}" + (f" with {details}." if details else "."))
        lead = rng.choice(("I have a few requests.", "Several things, please.", "Help me with a few tasks."))
        return f"{lead} " + " ".join(sentences)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- values ---------------------------------------------------------------------------

_CITIES = (
    "Paris",
    "Tokyo",
    "New York",
    "Berlin",
    "Lisbon",
    "Toronto",
    "Sydney",
    "Nairobi",
    "Madrid",
    "Seoul",
    "Chicago",
    "Mumbai",
)
_COUNTRIES = ("France", "Japan", "Canada", "Brazil", "Kenya", "Germany", "India", "Mexico", "Italy", "Australia")
_COUNTRY_CODES = ("US", "FR", "JP", "DE", "BR", "IN", "GB", "CA")
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD")
_LANGUAGES = ("English", "Spanish", "French", "German", "Japanese", "Portuguese")
_LANGUAGE_CODES = ("en", "es", "fr", "de", "ja", "pt")
_PEOPLE = ("Maria Lopez", "James Chen", "Aisha Khan", "Lukas Weber", "Sofia Rossi", "Kenji Sato")
_USERNAMES = ("mlopez42", "jchen_dev", "aisha.k", "lweber", "sofia_r")
_SYMBOLS = ("AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "GOOGL")
_COINS = ("BTC", "ETH", "SOL", "ADA")
_COLORS = ("red", "blue", "green", "purple", "orange")
_TITLES = ("The Great Gatsby", "Inception", "Bohemian Rhapsody", "Pride and Prejudice", "The Matrix")
_CATEGORIES = ("technology", "sports", "science", "music", "travel", "health")
_TOPICS = ("machine learning", "electric cars", "climate change", "renewable energy", "space travel", "coffee")
_TEXTS = ("hello world", "racecar", "the quick brown fox", "level", "data science is fun", "a man a plan a canal panama")
_WORDS = ("sunrise", "harbor", "granite", "maple", "orbit", "velvet", "lantern", "meadow", "cobalt", "willow")
_UNITS = ("celsius", "fahrenheit", "kilograms", "miles", "meters")
_REGIONS = ("California", "Ontario", "Bavaria", "Queensland", "Texas")
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Labs")
_TEAMS = ("Lakers", "Arsenal", "Yankees", "Real Madrid")
_EXAMPLE = re.compile(r"(?:e\.g\.|for example|such as|like)[,:]?\s*['\"`]([^'\"`]{1,40})['\"`]", re.IGNORECASE)

# (words in the parameter name, values): the first rule whose word appears wins.
_STRING_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...] | str], ...] = (
    (("email", "mail"), "email"),
    (("url", "link", "website", "endpoint", "href"), "url"),
    (("phone", "mobile"), "phone"),
    (("datetime", "timestamp"), "datetime"),
    (("date", "day", "birthday", "since", "until"), "date"),
    (("time", "hour"), "time"),
    (("country_code", "countrycode"), _COUNTRY_CODES),
    (("currency", "base", "quote"), _CURRENCIES),
    (("language_code", "lang_code", "locale"), _LANGUAGE_CODES),
    (("language", "lang"), _LANGUAGES),
    (("city", "location", "place", "destination", "origin", "town", "from_city", "to_city", "venue"), _CITIES),
    (("country", "nation"), _COUNTRIES),
    (("region", "state", "province"), _REGIONS),
    (("username", "user_name", "handle", "login"), _USERNAMES),
    (("id", "code", "key", "sku", "isbn"), "identifier"),
    (("company", "brand", "organization", "organisation"), _COMPANIES),
    (("team", "club"), _TEAMS),
    (("recipe", "dish", "meal"), ("lasagna", "pad thai", "chicken curry", "caesar salad")),
    (("cuisine", "food", "diet", "dietary"), ("Italian", "Thai", "Mexican", "vegetarian", "vegan", "gluten-free")),
    (("fuel",), ("gasoline", "diesel", "electric", "hybrid")),
    (("season",), ("2022-2023", "2023-2024", "2021")),
    (("make", "manufacturer", "brand"), ("Yamaha", "Toyota", "Fender", "Sony")),
    (("sport", "game", "league"), ("basketball", "soccer", "tennis", "NBA", "Premier League")),
    (("animal", "breed", "species", "pet"), ("Maine Coon", "Golden Retriever", "Siamese", "African elephant")),
    (("name", "author", "person", "artist", "owner", "customer", "player", "recipient", "user"), _PEOPLE),
    (("symbol", "ticker", "stock"), _SYMBOLS),
    (("coin", "crypto", "token"), _COINS),
    (("color", "colour"), _COLORS),
    (("title", "book", "movie", "film", "song", "album"), _TITLES),
    (("category", "genre", "type", "kind"), _CATEGORIES),
    (("unit",), _UNITS),
    (("address", "street"), ("221B Baker Street", "742 Evergreen Terrace", "10 Downing Street")),
    (("zip", "postal", "postcode"), ("94103", "10001", "60614", "73301")),
    (("ip",), ("192.168.1.10", "10.0.0.5", "8.8.8.8")),
    (("file", "path", "filename"), ("report.pdf", "data.csv", "notes.txt")),
    (("format",), ("json", "csv", "xml")),
    (("order", "sort", "direction"), ("asc", "desc")),
    (("status",), ("active", "pending", "completed")),
    (("password", "secret"), ("S3cure!pass", "hunter2")),
    (("topic", "subject", "keyword", "query", "search", "term", "q", "interest"), _TOPICS),
    (("text", "sentence", "string", "phrase", "message", "content", "input", "word", "s", "str", "body", "comment"), _TEXTS),
)
_INTEGER_RULES: tuple[tuple[tuple[str, ...], tuple[int, int]], ...] = (
    (("days", "hours", "weeks", "duration", "months", "years", "period", "term"), (1, 30)),
    (("year",), (2015, 2025)),
    (("decimals", "places", "precision", "digits", "round"), (0, 4)),
    (("month",), (1, 12)),
    (("day",), (1, 28)),
    (("hour",), (0, 23)),
    (("minute", "second"), (0, 59)),
    (("age",), (18, 80)),
    (("page",), (1, 5)),
    (("port",), (8000, 9000)),
    (("id", "number_id", "user_id"), (100, 99999)),
    (("limit", "count", "num", "n", "size", "top", "quantity", "results", "max", "k", "number", "length", "times"), (2, 20)),
    (("zip", "postal"), (10001, 99950)),
)
_NUMBER_RULES: tuple[tuple[tuple[str, ...], tuple[float, float, int]], ...] = (
    (("lat", "latitude"), (-60.0, 60.0, 4)),
    (("lon", "lng", "longitude"), (-150.0, 150.0, 4)),
    (
        ("amount", "price", "cost", "salary", "income", "balance", "principal", "total", "value", "budget", "loan", "investment"),
        (10.0, 5000.0, 2),
    ),
    (("rate", "interest", "percentage", "percent", "tax", "discount", "tip", "growth"), (0.5, 15.0, 2)),
    (("probability", "ratio", "fraction", "alpha", "p"), (0.01, 0.99, 2)),
    (("temperature", "temp"), (-10.0, 40.0, 1)),
    (
        ("weight", "height", "length", "width", "distance", "radius", "speed", "area", "volume", "mass", "base", "side"),
        (1.0, 200.0, 1),
    ),
)


def _name_words(name: str) -> set[str]:
    readable = _readable(name)
    words = set(readable.split())
    words.add(readable.replace(" ", "_"))
    words.update(word[:-1] for word in list(words) if word.endswith("s") and len(word) > 3)
    return words


def _lookup(name: str, rules: tuple[tuple[tuple[str, ...], Any], ...]) -> Any:
    words = _name_words(name)
    joined = name.lower()
    for keys, values in rules:
        for key in keys:
            if key in words or ("_" in key and key in joined):
                return values
    return None


_GENERIC_NAMES = frozenset(
    {"start", "end", "from", "to", "begin", "finish", "first", "second", "a", "b", "x", "y", "value", "source", "target", "arg"}
)


class _Values:
    """Argument values from compiled parameter types and the raw schema beside them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.context = ""

    def arguments(self, tool: Tool) -> dict[str, Any]:
        raw = _raw_properties(tool)
        self.context = tool.description  # says what generic names (`start`, `end`) stand for
        return self._members(tool.parameters, raw, top=True)

    def _members(self, parameters: ObjectType, raw: Mapping[str, Any], *, top: bool = False) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        for name, declared in parameters.properties.items():
            if name not in parameters.required and self.rng.random() >= (0.45 if top else 0.3):
                continue
            spec = raw.get(name)
            arguments[name] = self.value(name, declared, spec if isinstance(spec, dict) else {})
        return arguments

    def value(self, name: str, declared: Type, spec: Mapping[str, Any], depth: int = 0) -> Any:
        rng = self.rng
        if declared.enum:
            return rng.choice(declared.enum)
        if isinstance(declared, UnionType):
            options = [option for option in declared.options if not (isinstance(option, ScalarType) and option.name == "null")]
            return self.value(name, rng.choice(options) if options else declared.options[0], spec, depth)
        if isinstance(declared, ScalarType):
            if declared.name == "string":
                return self._string(name, spec)
            if declared.name == "integer":
                return self._integer(name, declared)
            if declared.name == "number":
                return self._number(name, declared)
            if declared.name == "boolean":
                return rng.random() < 0.5
            return None
        if isinstance(declared, ArrayType):
            return self._array(name, declared, spec, depth)
        if isinstance(declared, ObjectType):
            if depth > 3:
                return {}
            if declared.properties:
                nested = _mapping(spec.get("properties"))
                members = self._members(declared, nested)
                if not members:  # an empty object says little: fill one member
                    first = next(iter(declared.properties))
                    members[first] = self.value(first, declared.properties[first], _mapping(nested.get(first)), depth + 1)
                return members
            if declared.required:  # keys required but not declared: guess their kind from the name
                return {
                    key: self.value(key, ScalarType("integer") if _lookup(key, _INTEGER_RULES) else AnyType(), {}, depth + 1)
                    for key in sorted(declared.required)
                }
            if isinstance(declared.additional, Type):
                return {rng.choice(_WORDS): self.value(name, declared.additional, {}, depth + 1)}
            return {rng.choice(("color", "size", "mood")): rng.choice(_WORDS)}
        if isinstance(declared, AnyType):
            return self._string(name, spec)
        return None

    def _string(self, name: str, spec: Mapping[str, Any]) -> str:
        rng = self.rng
        description = str(spec.get("description") or "")
        example = _EXAMPLE.search(description)
        if example and rng.random() < 0.6:
            return example.group(1).strip()
        rule = _lookup(name, _STRING_RULES)
        if rule is None and description:
            rule = _lookup(" ".join(re.findall(r"[a-z]+", description.lower())[:6]), _STRING_RULES)
        if rule is None and _readable(name) in _GENERIC_NAMES and self.context:
            rule = _lookup(" ".join(re.findall(r"[a-z]+", self.context.lower())[:12]), _STRING_RULES)
        if isinstance(rule, tuple):
            return str(rng.choice(rule))
        if rule == "email":
            person = rng.choice(_PEOPLE).lower().split()
            return f"{person[0]}.{person[1]}@example.com"
        if rule == "url":
            return f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 99)}"
        if rule == "phone":
            return f"+1-555-01{rng.randint(10, 99)}"
        if rule in ("date", "datetime", "time"):
            day = datetime.date(2023, 1, 1) + datetime.timedelta(days=rng.randrange(3 * 365))
            clock = f"{rng.randint(7, 20):02d}:{rng.choice((0, 15, 30, 45)):02d}"
            if rule == "date":
                return day.isoformat()
            return f"{day.isoformat()}T{clock}:00" if rule == "datetime" else clock
        if rule == "identifier":
            return f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randint(1000, 99999)}"
        return rng.choice(_WORDS)

    def _integer(self, name: str, declared: Type) -> int:
        low, high = _lookup(name, _INTEGER_RULES) or (1, 100)
        low, high = _within(low, high, declared)
        # JSON tools carry integers of 64 bits; a schema asking for more gets the nearest such value.
        first = min(max(math.ceil(low), _INT64_MIN), _INT64_MAX)
        last = min(max(math.floor(high), _INT64_MIN), _INT64_MAX)
        return self.rng.randint(first, max(first, last))

    def _number(self, name: str, declared: Type) -> float:
        low, high, digits = _lookup(name, _NUMBER_RULES) or (1.0, 100.0, 1)
        low, high = _within(low, high, declared)
        value = round(self.rng.uniform(low, high), digits)
        if declared.minimum is not None and value < declared.minimum:
            value = float(declared.minimum)
        if declared.maximum is not None and value > declared.maximum:
            value = float(declared.maximum)
        return value

    def _array(self, name: str, declared: ArrayType, spec: Mapping[str, Any], depth: int) -> list[Any]:
        items_spec = _mapping(spec.get("items"))
        singular = name[:-1] if name.endswith("s") and len(name) > 3 else name
        if declared.prefix is not None:
            return [self.value(f"{singular}{index}", item, {}, depth + 1) for index, item in enumerate(declared.prefix)]
        low = max(declared.min_items or 2, 1) if declared.min_items is not None else 2
        high = declared.max_items if declared.max_items is not None else max(low, 4)
        count = self.rng.randint(low, max(low, min(high, low + 2)))
        item_type = declared.items if declared.items is not None else ScalarType("string")
        values: list[Any] = []
        for _ in range(count * 3):
            value = self.value(singular, item_type, items_spec, depth + 1)
            if value not in values or isinstance(value, bool):
                values.append(value)
            if len(values) == count:
                break
        return values


def _within(low: float, high: float, declared: Type) -> tuple[float, float]:
    """Narrow a natural range to the declared minimum/maximum, or move it inside them."""
    minimum, maximum = declared.minimum, declared.maximum
    if minimum is not None and maximum is not None:
        if minimum > maximum:
            return minimum, minimum
        inner_low, inner_high = max(low, minimum), min(high, maximum)
        return (inner_low, inner_high) if inner_low <= inner_high else (minimum, maximum)
    if minimum is not None and low < minimum:
        return minimum, max(high, minimum + (high - low))
    if maximum is not None and high > maximum:
        return min(low, maximum - (high - low)), maximum
    return low, high


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _raw_properties(tool: Tool) -> Mapping[str, Any]:
    """The tool's raw parameter specs by name (descriptions, defaults), whatever the dialect."""
    function = tool.definition.get("function")
    body = function if isinstance(function, dict) else tool.definition
    parameters = body.get("parameters") or body.get("input_schema") or {}
    if not isinstance(parameters, dict):
        return {}
    if tool.dialect == "xlam":
        return parameters
    properties = parameters.get("properties")
    return properties if isinstance(properties, dict) else {}


# --- deliberate mistakes --------------------------------------------------------------


def _make_mistake(rng: random.Random, tools: list[Tool], calls: list[tuple[str, dict[str, Any]]]) -> str:
    """Spoil one call the way models do; returns which mistake was made."""
    by_name = {tool.name: tool for tool in tools}
    order = list(MISTAKES)
    rng.shuffle(order)
    for mistake in order:
        index = rng.randrange(len(calls))
        name, arguments = calls[index]
        tool = by_name[name]
        if mistake == "invented_tool":
            invented = _invented_name(name, by_name)
            calls[index] = (invented, arguments)
            return mistake
        if mistake == "missing_required_argument":
            present = [key for key in tool.parameters.required_in_order if key in arguments]
            if present:
                del arguments[rng.choice(present)]
                return mistake
        if mistake == "wrong_type":
            scalars = [
                key
                for key, value in arguments.items()
                if isinstance(tool.parameters.properties.get(key), ScalarType)
                and value is not None
                and not tool.parameters.properties[key].enum
            ]
            if scalars:
                key = rng.choice(scalars)
                arguments[key] = _wrong_type_value(arguments[key])
                return mistake
        if mistake == "out_of_range":
            ranged = [key for key in arguments if _rangeable(tool.parameters.properties.get(key))]
            if ranged:
                key = rng.choice(ranged)
                arguments[key] = _out_of_range_value(tool.parameters.properties[key], arguments[key])
                return mistake
    calls[0] = (_invented_name(calls[0][0], by_name), calls[0][1])
    return "invented_tool"


def _invented_name(name: str, offered: Mapping[str, Tool]) -> str:
    for candidate in (f"{name}_v2", f"get_{name}", f"{name}_tool", f"{name}_api"):
        if candidate not in offered:
            return candidate
    return name + "_" + str(len(offered) + 1)


def _wrong_type_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)  # "42" for 42: the commonest slip
    return 42 if not str(value).isdigit() else int(str(value)) + 0.5


def _rangeable(declared: Type | None) -> bool:
    if declared is None:
        return False
    if declared.enum and all(isinstance(item, str) for item in declared.enum):
        return True
    return (
        isinstance(declared, ScalarType)
        and declared.name in ("integer", "number")
        and (declared.minimum is not None or declared.maximum is not None)
    )


def _out_of_range_value(declared: Type, value: Any) -> Any:
    if declared.enum:
        return "other" if "other" not in declared.enum else "unknown_value"
    step = 1 if isinstance(declared, ScalarType) and declared.name == "integer" else 1.5
    if declared.maximum is not None:
        result = declared.maximum + step * 10
    else:
        assert declared.minimum is not None
        result = declared.minimum - step * 10
    return int(result) if step == 1 else float(result)


# --- judging --------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def judge(task: Mapping[str, Any]) -> dict[str, str]:
    """``{"thought", "pass"}`` by plain rules; the thought names every problem found."""
    query = task.get("query")
    if not isinstance(query, str) or not query.strip():
        return {"thought": "there is no query to judge the calls against", "pass": "no"}
    answers = _decoded(task.get("answers"))
    if not isinstance(answers, list) or not answers:
        return {"thought": "there are no function calls", "pass": "no"}
    tools = _compiled_tools(task.get("tools")) if task.get("tools") is not None else []
    offered = {tool.name: tool for tool in tools}
    problems: list[str] = []
    for position, call in enumerate(answers, start=1):
        if not isinstance(call, dict):
            problems.append(f"call {position} is not an object")
            continue
        name = call.get("name")
        arguments = _decoded(call.get("arguments", {}))
        tool = offered.get(name) if isinstance(name, str) else None
        if offered and tool is None:
            problems.append(f"call {position} names `{name}`, which is not among the available functions")
        if isinstance(arguments, dict):
            defaults = _defaults(tool) if tool is not None else {}
            for where, value in _leaves(arguments):
                top = where.split(".", 1)[0].split("[", 1)[0]
                if top in defaults and defaults[top] == arguments.get(top):
                    continue
                if not _in_query(value, query):
                    problems.append(f"argument `{where}` of call {position} ({_mention(value)}) is not in the query")
    results = _decoded(task.get("execution_result"))
    if results is not None:
        entries = results if isinstance(results, list) else [results]
        if len(entries) != len(answers):
            problems.append(f"{len(answers)} calls but {len(entries)} execution results")
        needs_data = _asks_for_data(query)
        for position, entry in enumerate(entries, start=1):
            failure = _result_error(entry)
            if failure is not None:
                problems.append(f"call {position} failed: {failure}")
            elif needs_data and _is_empty(entry):
                problems.append(f"call {position} returned nothing")
    if problems:
        return {"thought": "; ".join(problems), "pass": "no"}
    checked = "ran without error and " if results is not None else ""
    return {"thought": f"every call {checked}uses only values the query states", "pass": "yes"}


def _defaults(tool: Tool) -> dict[str, Any]:
    return {name: spec["default"] for name, spec in _raw_properties(tool).items() if isinstance(spec, dict) and "default" in spec}


def _leaves(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """The scalar values that must appear in the query; booleans and nulls are exempt."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{where}[{index}]")
    elif not (value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip())):
        yield where, value


def _in_query(value: Any, query: str) -> bool:
    if isinstance(value, (int, float)):
        for match in _NUMBER.findall(query):
            try:
                if abs(float(match.replace(",", "")) - value) < 1e-9:
                    return True
            except ValueError:
                continue
        return False
    return str(value).strip().lower() in query.lower()


def _result_error(entry: Any) -> str | None:
    """Why a call's entry (``{"ok", "result"}`` as exec-check writes it, or a bare result) says the call failed.

    The result itself is read by exec-check's own rule (``rows.results``): a tool that
    answers ``Database error: ...`` without flagging it has failed all the same.
    """
    if isinstance(entry, dict):
        for key in ("error", "exception", "traceback"):
            if entry.get(key):
                return _said(entry[key])
        if (
            entry.get("ok") is False
            or entry.get("success") is False
            or str(entry.get("status", "")).lower() in ("error", "failed")
        ):
            return _said(entry.get("message") or entry.get("reason") or entry.get("result") or "the call failed")
        entry = next((entry[key] for key in _RESULT_KEYS if key in entry), entry)  # else the entry is the bare result
    return _said(entry) if _ERROR_SHAPES.why_error(entry) is not None else None


def _said(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text.strip()[:120]


_RESULT_KEYS = ("result", "output", "return", "value", "response")
_ERROR_SHAPES = ErrorShapes()
# Words that make a query ask for something back; without one, it asks for an action ("Delete the file
# report.txt.") and an empty result ("done", None) is a fair answer.
_ASKING = re.compile(
    r"\?|\b(?:what|which|who|whom|whose|when|where|why|how|find|get|show|list|search|look|lookup|fetch|tell|give|"
    r"retrieve|return|calculate|compute|convert|check|count|estimate|translate|query|read)\b",
    re.IGNORECASE,
)


def _asks_for_data(query: str) -> bool:
    """Does the query want data back (so an empty result cannot answer it)?"""
    return _ASKING.search(query) is not None


def _is_empty(entry: Any) -> bool:
    if is_empty_result(entry):
        return True
    if isinstance(entry, dict):
        for key in _RESULT_KEYS:
            if key in entry:
                return _is_empty(entry[key])
    return False
