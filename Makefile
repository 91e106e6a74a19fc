# The two commands a newcomer types: `make demo` and `make test`.
# Each creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench gridworld clean

# Python caches the bytecode of what it imports (some machines set PYTHONDONTWRITEBYTECODE=1,
# which makes every test process compile the project, and with --no-compile below torch and ray,
# again); a user's game file is still run without writing next to it (games/user_games.py)
unexport PYTHONDONTWRITEBYTECODE

# Two pip runs: the machine's pip puts a current pip and setuptools into a venv made without
# pip; that pip then installs torch and the project. Its resolver walks the registry's ~70,000
# wheel links in half the CPU of the older pip machines ship (pip 23: about 48 CPU s for the
# whole install under load, pip 26: about 31), and the project's editable build reuses the
# venv's setuptools instead of building an isolated environment (about 2 CPU s).
# --no-compile: compiling every module of torch and ray took about 55 CPU s; Python compiles
# only what is imported, once (measured in BENCHMARKS.md, "Test suite time")
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install -q --no-compile pip 'setuptools>=70.1'
	$(BIN)/python -m pip install -q --no-compile --no-build-isolation -c constraints.txt \
		torch==2.13.0 -e '.[dev,ray]'
	@# the report's browser test (tests/test_report_html.py) opens index.html in Chromium
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "chromium not installed (needs root and apt-get): the browser test will skip"
	touch $(STAMP)

# the main job: a tournament of every leader on small games, then its report
demo: $(STAMP)
	$(BIN)/stackelberg tournament configs/tournament_demo.toml --out runs/demo --workers 2
	$(BIN)/stackelberg report runs/demo

# every test, on every core; the test suite runs BLAS on one thread per process (tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pbrl_iteration.py
	$(BIN)/python benchmarks/bench_sampling.py
	$(BIN)/python benchmarks/bench_tournament.py

# issue 3's comparison: the sample-based leaders on the GridWorld (a few minutes), its
# samples-to-tolerance table in BENCHMARKS.md and docs/gridworld_comparison.png
gridworld: $(STAMP)
	$(BIN)/python benchmarks/bench_gridworld_samples.py

clean:
	rm -rf runs .pytest_cache
