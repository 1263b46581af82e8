# Trackbox — every target sets up what it needs on a fresh Debian machine with only Python.
#   make demo   the app on the embedded demo (CRM emulator + demo mailbox)
#   make test   the whole test suite against real servers on loopback
#   make bench  the benchmarks (ratios against baselines measured in the same run)
#   make lint   ruff check, ruff format --check, mypy --strict
#   make installer  the self-contained desktop bundle and tarball in dist/

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps

# Qt's runtime libraries (offscreen and X11), fonts so text renders.
DEBS_QT := libegl1 libgl1 libglib2.0-0 libdbus-1-3 libfontconfig1 libxkbcommon0 fontconfig \
	fonts-dejavu-core
DEBS_X11 := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0
# Real servers the tests talk to on loopback; Xvfb for the real-window checks; strip for the
# installer bundle.
DEBS_TEST := dovecot-imapd dovecot-lmtpd isync binutils redis-server radicale

.PHONY: demo test bench lint installer venv debs-test debs-demo clean

venv: $(STAMPS)/venv

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	@touch $@

debs-test:
	@scripts/ensure-debs.sh $(DEBS_QT) $(DEBS_X11) $(DEBS_TEST)

debs-demo:
	@scripts/ensure-debs.sh $(DEBS_QT) $(DEBS_X11)

demo: venv debs-demo
	$(VENV)/bin/trackbox demo

# Test workers: one per core (each starts its own servers); a test file stays on one worker.
TEST_WORKERS ?= 2

test: venv debs-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: venv debs-test
	QT_QPA_PLATFORM=offscreen $(PY) -m bench all

installer: $(STAMPS)/venv debs-test
	@$(PY) -c 'import PyInstaller' 2>/dev/null || $(PY) -m pip install -q 'pyinstaller>=6.10,<7'
	installer/build.sh --python $(PY)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict core crmserver router
	$(VENV)/bin/mypy --strict desktop

clean:
	rm -rf $(STAMPS) build dist *.egg-info
