# Two commands on a fresh machine: `make chat` and `make test`.
# Each creates .venv and installs the project into it when missing or out of date.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared

.PHONY: chat test eval bench lint typecheck clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

chat: $(STAMP)
	@$(BIN)/guidebot chat

# The whole suite: style, types, then the tests (CI runs exactly this).
test: lint typecheck
	$(BIN)/python -m pytest -q

# The shared development set (when ../shared is beside the clone), then the
# staff-question set that ships with the project.
eval: $(STAMP)
	@if [ -f $(SHARED)/eval/dev.jsonl ]; then \
		echo "Development set ($(SHARED)/eval/dev.jsonl):"; \
		$(BIN)/guidebot eval $(SHARED)/eval/dev.jsonl; echo; \
	else echo "No $(SHARED)/eval/dev.jsonl here: scoring the bundled set only."; echo; fi
	@echo "Staff questions (benchmarks/questions/staff.jsonl):"
	@$(BIN)/guidebot eval --quiet benchmarks/questions/staff.jsonl
	@echo; echo "Unseen questions (benchmarks/questions/unseen.jsonl, scores only):"
	@$(BIN)/guidebot eval --quiet benchmarks/questions/unseen.jsonl
	@echo; echo "Fresh questions (benchmarks/questions/fresh.jsonl, scores only):"
	@$(BIN)/guidebot eval --quiet benchmarks/questions/fresh.jsonl

bench: $(STAMP)
	@$(BIN)/python -m benchmarks.knowledge_bench
	@echo
	@$(BIN)/python -m benchmarks.slack_bench
	@echo
	@$(BIN)/python -m benchmarks.concern_bench
	@echo
	@$(BIN)/python -m benchmarks.broadcast_bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy


clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
