# The two commands a fresh clone needs: `make demo` and `make test`.
# Each installs what it needs first, into .venv, so nothing else is required.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT := out/demo
MT_OUT := out/demo-multi-turn

.PHONY: install test lint fix docs demo demo-multi-turn bench smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/cog --check docs/cli-reference.md

fix: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# docs/cli-reference.md from every command's --help, then the site (mkdocs.yml) into site/:
# --strict fails on a broken link, a missing page or an unknown anchor; nothing is fetched
docs: $(STAMP)
	$(BIN)/cog -r docs/cli-reference.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: $(STAMP)
	@rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(BIN)/apigen run sample_data/apis.jsonl --functions sample_data/functions \
		--model offline --judge-model offline --count 120 --seed 7 --examples sample_data/examples.jsonl \
		-o $(DEMO_OUT)/dataset.jsonl --rejects $(DEMO_OUT)/rejects.jsonl --report $(DEMO_OUT)/report.json
	@echo "--- a verified row ($(DEMO_OUT)/dataset.jsonl):"
	@head -n 1 $(DEMO_OUT)/dataset.jsonl | cut -c 1-400
	@echo "--- a rejected row ($(DEMO_OUT)/rejects.jsonl):"
	@head -n 1 $(DEMO_OUT)/rejects.jsonl | cut -c 1-400

# The multi-turn path on the sample store: blueprints written offline, each checked on the real state,
# then acted out by a scripted user and agent, each conversation kept only when verified.
demo-multi-turn: $(STAMP)
	@rm -rf $(MT_OUT) && mkdir -p $(MT_OUT)
	$(BIN)/apigen library from-python sample_data/store --class OnlineStore -o $(MT_OUT)/store_tools.jsonl -q
	$(BIN)/apigen run --multi-turn $(MT_OUT)/store_tools.jsonl --functions sample_data/store \
		--initial-state sample_data/store/initial_state.json --policy sample_data/store/policy.md \
		--policy-checks sample_data/store/policy_checks.py -m offline -J offline -n 12 --seed 23 -O offline_error_rate=0.3 \
		-o $(MT_OUT)/conversations.jsonl --rejects $(MT_OUT)/failed.jsonl
	@echo "--- a verified blueprint ($(MT_OUT)/conversations.blueprints.jsonl), without its environment:"
	@head -n 1 $(MT_OUT)/conversations.blueprints.jsonl | $(BIN)/python -c 'import json, sys; row = json.loads(sys.stdin.read()); row.pop("environment"); print(json.dumps(row)[:700])'
	@echo "--- why the other blueprints were rejected ($(MT_OUT)/failed.blueprints.jsonl):"
	@$(BIN)/python -c 'import json, sys; [print(r["id"], r["rejected_by"], r["reason"] + ":", r["reason_detail"][:140]) for r in map(json.loads, open(sys.argv[1]))]' $(MT_OUT)/failed.blueprints.jsonl
	@echo "--- a verified conversation ($(MT_OUT)/conversations.jsonl), message by message:"
	@head -n 1 $(MT_OUT)/conversations.jsonl | $(BIN)/python -c 'import json, sys; [print(m["role"] + ":", (m.get("content") or json.dumps([c["function"] for c in m.get("tool_calls") or []]))[:110]) for m in json.loads(sys.stdin.read())["messages"][1:]]'
	@echo "--- why the other attempts failed ($(MT_OUT)/failed.jsonl):"
	@$(BIN)/python -c 'import json, sys; [print(r["id"], r["reason"] + ":", r["reason_detail"][:120], r["simulation"]["user_errors"]) for r in map(json.loads, open(sys.argv[1]))]' $(MT_OUT)/failed.jsonl

smoke: $(STAMP)
	$(BIN)/apigen generate sample_data/apis.jsonl -m offline -n 30 --seed 1 -q \
		| $(BIN)/apigen format-check -q \
		| $(BIN)/apigen exec-check --functions sample_data/functions -q \
		| $(BIN)/apigen semantic-check -J offline -q \
		| $(BIN)/apigen export --format openai -q | head -n 1 | cut -c 1-300

bench: $(STAMP)
	$(BIN)/python benchmarks/format_check.py
	$(BIN)/python benchmarks/dedup.py
	$(BIN)/python benchmarks/exec_check.py
	$(BIN)/python benchmarks/sessions.py
	$(BIN)/python benchmarks/trajectory_check.py
	$(BIN)/python benchmarks/mcp_exec.py
	$(BIN)/python benchmarks/llm_throughput.py
	$(BIN)/python benchmarks/library_openapi.py
	$(BIN)/python benchmarks/grow_examples.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/pipeline.py --phases
	$(BIN)/python benchmarks/generate_scale.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/state_save.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) out site .pytest_cache .mypy_cache .ruff_cache
