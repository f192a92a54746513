# seccomp-operator: `make demo` and `make test` do all set-up on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin

.PHONY: install system-deps demo test lint unit bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# containerd, runc, busybox-static, libseccomp2, strace from Debian; starts containerd.
# Needs root; without root it says so and the container parts are skipped (demo) or fail (CI).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		bash .ci/install-dataplane.sh; \
	else \
		echo "system-deps: not root or no apt-get; install containerd runc busybox-static libseccomp2 strace yourself"; \
	fi

demo: install system-deps
	$(BIN)/seccomp-operator demo

LINT_DIRS := operator tests $(wildcard bench)

lint: install
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy

unit: install
	$(PY) -m pytest -q -m "not integration and not containerd"

test: install system-deps lint
	$(PY) -m pytest -q

bench: install
	$(PY) bench/rollout.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
