# Local development: `make run`, `make test`. Docker environments: `make dev`, `make prod`, `make staging`.
# PostgreSQL (with q3c) comes from containers/local/database.sh: DATABASE_URL if set, else a
# password-less server on 127.0.0.1:5432, else a private cluster in var/pg on port 55432.

SHELL := /bin/bash

# Install missing Debian packages, then export DATABASE_URL and VETTER_TEST_DATABASE_URL.
# (Not `eval "$(...)"`: that would hide a failure of database.sh.)
WITH_DB = containers/local/prepare.sh && db_env=$$(containers/local/database.sh) && eval "$$db_env" &&

# With a committed .sqlx query cache, the sqlx macros need no database at build time.
ifneq ($(wildcard .sqlx),)
export SQLX_OFFLINE ?= true
endif

COMPOSE_DEV     = docker compose -f docker-compose.yml
COMPOSE_PROD    = docker compose -f docker-compose.yml -f docker-compose.prod.yml
COMPOSE_STAGING = docker compose -p vetter-staging -f docker-compose.yml -f docker-compose.prod.yml -f docker-compose.staging.yml
ENV ?= dev
COMPOSE_dev     = $(COMPOSE_DEV)
COMPOSE_prod    = $(COMPOSE_PROD)
COMPOSE_staging = $(COMPOSE_STAGING)

.PHONY: help run test bench fmt lint migrate clean-db dev dev-down prod prod-down staging staging-down logs

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## build and serve the app on http://127.0.0.1:8000 (local PostgreSQL, demo data)
	@$(WITH_DB) exec containers/local/run.sh

test: ## cargo fmt --check, then cargo test (ARGS=... are passed to cargo test)
	cargo fmt --check
	@$(WITH_DB) DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo test $(ARGS)

bench: ## upload throughput through the HTTP API, optimised build (VETTER_BENCH_*: see benches/upload.rs)
	@$(WITH_DB) DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench upload $(ARGS)

fmt: ## format the code
	cargo fmt

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

migrate: ## build, then apply the migrations to DATABASE_URL
	@$(WITH_DB) cargo build --bin vetter && target/debug/vetter migrate

clean-db: ## stop the private cluster and delete var/pg (a server on 5432 is left alone)
	@containers/local/database.sh --clean

dev: ## start the docker development environment
	$(COMPOSE_DEV) up -d --build

dev-down: ## stop the docker development environment
	$(COMPOSE_DEV) down

prod: ## start the docker production environment
	$(COMPOSE_PROD) up -d --build

prod-down: ## stop the docker production environment
	$(COMPOSE_PROD) down

staging: ## start the docker staging environment
	$(COMPOSE_STAGING) up -d --build

staging-down: ## stop the docker staging environment
	$(COMPOSE_STAGING) down

logs: ## follow the docker logs (ENV=dev|prod|staging, default dev)
	$(COMPOSE_$(ENV)) logs -f --tail=200
