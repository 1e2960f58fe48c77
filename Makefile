# Local development: `make run`, `make test`. Docker environments: `make dev`, `make prod`, `make staging`.
# PostgreSQL (with q3c) comes from containers/local/database.sh: DATABASE_URL if set, else a
# password-less server on 127.0.0.1:5432, else a private cluster in var/pg on port 55432.

SHELL := /bin/bash

# Install missing Debian packages, then export DATABASE_URL and VETTER_TEST_DATABASE_URL.
# (Not `eval "$(...)"`: that would hide a failure of database.sh.)
WITH_DB = containers/local/prepare.sh && db_env=$$(containers/local/database.sh) && eval "$$db_env" &&

# A real S3 server (Ceph's RADOS gateway) for the tests and benchmarks: exports VETTER_TEST_S3_*.
# It stops by itself when this recipe's shell ends, also when `make test` is killed.
WITH_S3 = s3_env=$$(containers/local/objectstore.sh start --owner $$$$) && eval "$$s3_env" &&

# A second, light S3 server (s3s-fs) for the upload benchmark: exports VETTER_BENCH_LIGHT_S3_ENDPOINT.
WITH_LIGHT_S3 = light_env=$$(containers/local/s3s-fs.sh start --owner $$$$) && eval "$$light_env" &&

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

.PHONY: help run test bench fmt lint migrate clean-db dev dev-down prod prod-down staging staging-down logs \
	edge-network cert-init-prod cert-init-staging

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## build and serve the app on http://127.0.0.1:8000 (local PostgreSQL, demo data)
	@$(WITH_DB) exec containers/local/run.sh

test: ## cargo fmt --check, then cargo test against PostgreSQL and an S3 server (ARGS=... are passed to cargo test)
	cargo fmt --check
	@$(WITH_DB) $(WITH_S3) DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo test $(ARGS)

bench: ## upload throughput, rate-and-next latency, search and export, grouping candidates, the learning queue (a simulated survey rated over HTTP; the model at a million candidates), a 64-reviewer soak, every page's throughput against /healthz, media through nginx from the folder and a bucket, a 3M-row catalogue load and the known-sources panel, the read API's candidate list and export at a million candidates, keypress-to-paint in Chromium; optimised builds
	@$(WITH_DB) $(WITH_S3) $(WITH_LIGHT_S3) DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench upload $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench rating $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench search $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench groups $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench model $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench soak $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench throughput $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench media $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench catalogues $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" cargo bench --bench read_api $(ARGS) && \
		DATABASE_URL="$$VETTER_TEST_DATABASE_URL" VETTER_BENCH_PAINT=1 \
			cargo test --release --test browser rate_ -- --nocapture

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

prod: edge-network ## start the docker production environment
	$(COMPOSE_PROD) up -d --build

prod-down: ## stop the docker production environment
	$(COMPOSE_PROD) down

staging: edge-network ## start the docker staging environment
	$(COMPOSE_STAGING) up -d --build

staging-down: ## stop the docker staging environment
	$(COMPOSE_STAGING) down

# The commit the images are built from, shown in the app's footer (containers/Dockerfile).
dev prod staging cert-init-prod cert-init-staging: export VETTER_BUILD_COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)

edge-network: ## create the docker network that production's and staging's nginx share (once per host)
	@docker network inspect vetter-edge >/dev/null 2>&1 || docker network create vetter-edge

# The first certificate, without the chicken and egg: nginx starts on a throwaway self-signed
# certificate when certbot's is missing (nginx/entrypoint/15-vetter-tls.envsh), certbot answers
# the HTTP-01 challenge through it, then nginx restarts on the real one. Renewals are automatic.
# CERTBOT_ARGS=--test-cert uses Let's Encrypt's staging CA (for trying this out).
define cert_init
	@test -n "$(EMAIL)" || { echo "usage: make $@ EMAIL=you@example.org [CERTBOT_ARGS=--test-cert]" >&2; exit 1; }
	$(1) up -d --build nginx
	$(1) run --rm --no-deps -e CERTBOT_EMAIL='$(EMAIL)' --entrypoint /bin/sh certbot -c \
		'certbot certonly --webroot -w /var/www/certbot -d "$$VETTER_SERVER_NAME" -m "$$CERTBOT_EMAIL" --agree-tos --no-eff-email --non-interactive --keep-until-expiring $(CERTBOT_ARGS)'
	$(1) restart nginx
endef

cert-init-prod: edge-network ## first Let's Encrypt certificate for production (EMAIL=you@example.org)
	$(call cert_init,$(COMPOSE_PROD))

cert-init-staging: edge-network ## first certificate for staging (production's nginx must be running)
	$(call cert_init,$(COMPOSE_STAGING))

logs: ## follow the docker logs (ENV=dev|prod|staging, default dev)
	$(COMPOSE_$(ENV)) logs -f --tail=200
