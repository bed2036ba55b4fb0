# Vínculo — two commands: `make run` (booth node) and `make test` (whole suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FLASK := $(VENV)/bin/flask --app wsgi
PYBABEL := $(VENV)/bin/pybabel
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 5000
export HOST PORT

.PHONY: run central test install test-install translations extract-messages instance db system-packages clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

translations: install
	$(PYBABEL) compile --statistics -d booth/translations

extract-messages: install
	$(PYBABEL) extract -F babel.cfg -k _l -o booth/translations/messages.pot --no-location --sort-output .
	$(PYBABEL) update -i booth/translations/messages.pot -d booth/translations --no-fuzzy-matching

instance: install
	$(PY) -m booth.instance $${VINCULO_INSTANCE_DIR:-instance}

db: instance translations
	$(FLASK) db upgrade

## make run: creates .venv, installs, initialises instance/ (secret + SQLite + migrations), serves the booth node.
run: db
	$(PY) -m booth.serve

## make central DATABASE_URL=postgresql+psycopg://…: the central server on PostgreSQL.
central: instance translations
	@test -n "$(DATABASE_URL)" || { echo "Set DATABASE_URL=postgresql+psycopg://user@host/db"; exit 2; }
	VINCULO_ROLE=central $(FLASK) db upgrade
	VINCULO_ROLE=central $(PY) -m booth.serve

system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v zbarimg >/dev/null || missing="$$missing zbar-tools"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

test-install: $(VENV)/.test-installed system-packages translations

## make test: installs the test extras and Debian packages, then runs the whole suite, one pytest-xdist worker per
## core (each worker has its own PostgreSQL database and temporary folders). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: test-install
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
