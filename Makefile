# One-command setup and the test command the README and CI use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: system-tools install demo setup test lint mlproject server ui dashboard report

# COLMAP, ffmpeg, PostgreSQL, Chromium (.ci/apt-packages.txt): installed with apt-get as root, else one line
# saying what to run. The image studies do not need them.
system-tools:
	.ci/system-tools

# uv resolves and installs the ~300 pinned packages in about a minute; pip works too (slower).
# --seed puts pip in the venv: MLflow records its version in every logged model's environment.
install:
	$(PYTHON) -m pip install -q uv
	$(PYTHON) -m uv venv -q --seed --allow-existing --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip install -q --python $(BIN)/python -e '.[dev]'

# A real tracked SimCLR job that needs no network: synthetic data, a few epochs, embedded MLflow store.
demo:
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow run . -e simclr --experiment-name ssl --env-manager local \
		-P dataset=synthetic -P fraction=0.2 -P epochs=3 -P batch_size=128 -P monitor_bank=1000 -P warmup_fraction=0

setup: system-tools install demo

# Every suite (what CI runs). TESTS=tests/ssl picks one; the NeRF suite needs ../shared/data and the
# system tools in .ci/apt-packages.txt (COLMAP, ffmpeg, PostgreSQL for the Optuna storage test).
TESTS ?= tests

test:
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q $(TESTS)

# A tracking server for a team (README): PostgreSQL + `mlflow server` with proxied artifacts, data in
# ./mlflow-server. SERVER_ARGS="--host 0.0.0.0 --port 5000" etc.; the password comes from PGPASSWORD.
SERVER_ARGS ?=

server:
	$(BIN)/python -m projects.core.server $(SERVER_ARGS)

# The MLflow UI on the embedded store, quick to start on a small machine: one worker, no GenAI job runner.
# Open http://127.0.0.1:5000/#/experiments?workflowType=machine_learning
ui:
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --workers 1

# optuna-dashboard on the tune studies' default journal: http://127.0.0.1:8080
dashboard:
	$(BIN)/optuna-dashboard studies/optuna-journal.log

# One HTML page across the studies from what MLflow holds (report.html, also logged as an artifact).
report:
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow run . -e report --experiment-name reports --env-manager local

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

mlproject:
	$(BIN)/python -m projects.core.mlproject
