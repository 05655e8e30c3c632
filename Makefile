# The README's two commands: `make demo` and `make test`.  Both install first.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.imgjuicer-installed
export HF_HUB_OFFLINE := 1
export YOLO_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml requirements.lock tools/apt-packages.txt tools/install.sh
	bash tools/install.sh
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python tools/make_demo_data.py --out data/demo
	$(BIN)/python tools/run_demo.py

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	for b in tools/bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf outputs data/demo .pytest_cache
