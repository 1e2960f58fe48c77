#!/usr/bin/env bash
# Make sure a PostgreSQL server with q3c is reachable and print `export` lines for
# DATABASE_URL (app role `vetter`, database `vetter`) and VETTER_TEST_DATABASE_URL
# (superuser, database `postgres`, for tests that create a database each).
# stdout carries only those lines; diagnostics go to stderr. Idempotent.
#
# Which server, in order:
#   1. DATABASE_URL already set: used as is (q3c is added best effort).
#   2. A server on 127.0.0.1:$VETTER_PG_PORT_CHECK (default 5432) that lets
#      `postgres` in without a password.
#   3. A private cluster in $VETTER_PG_DIR (default ./var/pg) on 127.0.0.1:$VETTER_PG_PORT
#      (default 55432), created and started as needed.
#
# `database.sh --clean` stops the private cluster and deletes its directory.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_DIR=${VETTER_PG_DIR:-$REPO_ROOT/var/pg}
PG_PORT=${VETTER_PG_PORT:-55432}
PORT_CHECK=${VETTER_PG_PORT_CHECK:-5432}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5}

pg_bindir() {
	local d
	for d in "${VETTER_PG_BINDIR:-}" /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
		[ -n "$d" ] && [ -x "$d/psql" ] && {
			echo "$d"
			return
		}
	done
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/psql" ] && {
		echo "$d"
		return
	}
	die "PostgreSQL binaries not found: run containers/local/prepare.sh (apt-get install postgresql-15 postgresql-client-15)"
}
PGBIN=$(pg_bindir)

sql() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" "$PGBIN/psql" -X -w -q -v ON_ERROR_STOP=1 "$@"; }

# Run a command as the owner of the private cluster: `postgres` when we are root
# (initdb refuses to run as root), else ourselves.
as_pg() {
	if is_root; then
		if command -v runuser >/dev/null 2>&1; then
			(cd / && runuser -u postgres -- "$@")
		else
			(cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
		fi
	else
		"$@"
	fi
}

# Print `export NAME='value'`, single-quoted for the shell that evals it.
emit() {
	local q="'\\''"
	printf "export %s='%s'\n" "$1" "${2//\'/$q}"
}

q3c_hint() {
	local url=$1 ver
	ver=$(sql "$url" -Atc "select current_setting('server_version_num')::int / 10000" 2>/dev/null || echo 15)
	log "the PostgreSQL server has no q3c extension: install it with"
	log "  apt-get install postgresql-$ver-q3c   (containers/local/prepare.sh does this for PostgreSQL 15)"
}

# Case 1: the caller chose the database. Best effort only.
use_given_url() {
	local su=${VETTER_TEST_DATABASE_URL:-$DATABASE_URL} err
	log "using DATABASE_URL from the environment"
	if ! err=$(sql "$DATABASE_URL" -c 'CREATE EXTENSION IF NOT EXISTS q3c' 2>&1); then
		log "warning: could not ensure q3c in DATABASE_URL: $err"
		grep -q 'q3c.control\|not available' <<<"$err" && q3c_hint "$DATABASE_URL"
	fi
	if ! err=$(sql "$su" -c '\connect template1' -c 'CREATE EXTENSION IF NOT EXISTS q3c' 2>&1); then
		log "warning: could not ensure q3c in template1 (tests that create databases need it): $err"
	fi
	emit DATABASE_URL "$DATABASE_URL"
	emit VETTER_TEST_DATABASE_URL "$su"
}

local_server_ok() {
	"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT_CHECK" &&
		[ "$(sql -h 127.0.0.1 -p "$PORT_CHECK" -U postgres -d postgres -Atc 'select 1' 2>/dev/null)" = 1 ]
}

# Case 3: the private cluster; prints the port it listens on.
start_private() {
	local data=$PG_DIR/data run=$PG_DIR/run logf=$PG_DIR/log
	mkdir -p "$run"
	if is_root; then
		id postgres >/dev/null 2>&1 || die "no 'postgres' system user: run containers/local/prepare.sh"
		[ "$(stat -c %U "$PG_DIR")" = postgres ] || chown -R postgres:postgres "$PG_DIR"
		as_pg test -w "$PG_DIR" ||
			die "user postgres cannot reach $PG_DIR (is a parent directory private?); set VETTER_PG_DIR to a directory it can use, e.g. /var/tmp/vetter-pg"
	fi
	if [ ! -s "$data/PG_VERSION" ]; then
		log "creating a private PostgreSQL cluster in $data"
		as_pg "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
			{
				cat "$PG_DIR/initdb.log" >&2
				die "initdb failed"
			}
	fi
	if as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		# Running already: report the port it was started with (line 4 of postmaster.pid).
		sed -n 4p "$data/postmaster.pid"
		return
	fi
	log "starting the private PostgreSQL cluster on 127.0.0.1:$PG_PORT (log: $logf)"
	as_pg "$PGBIN/pg_ctl" -D "$data" -l "$logf" -w \
		-o "-p $PG_PORT -k '$run' -c listen_addresses=127.0.0.1" start >/dev/null ||
		{
			tail -n 20 "$logf" >&2 || true
			die "could not start PostgreSQL (is port $PG_PORT taken? set VETTER_PG_PORT)"
		}
	echo "$PG_PORT"
}

# Cases 2 and 3: q3c in template1 (inherited by every later database), the non-superuser
# role `vetter` owning database `vetter`, q3c in it.
setup_server() {
	local port=$1 su="host=127.0.0.1 port=$1 user=postgres dbname=postgres"
	if [ "$(sql "$su" -Atc "select count(*) from pg_available_extensions where name = 'q3c'")" = 0 ]; then
		q3c_hint "$su"
		exit 1
	fi
	sql "host=127.0.0.1 port=$port user=postgres dbname=template1" -c 'CREATE EXTENSION IF NOT EXISTS q3c'
	sql "$su" <<-'SQL'
		DO $$
		BEGIN
		  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vetter') THEN
		    CREATE ROLE vetter LOGIN PASSWORD 'vetter';
		  END IF;
		END
		$$;
		ALTER ROLE vetter LOGIN NOSUPERUSER;
		SELECT 'CREATE DATABASE vetter OWNER vetter'
		 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'vetter') \gexec
		ALTER DATABASE vetter OWNER TO vetter;
		\connect vetter
		CREATE EXTENSION IF NOT EXISTS q3c;
	SQL
	emit DATABASE_URL "postgres://vetter:vetter@127.0.0.1:$port/vetter"
	emit VETTER_TEST_DATABASE_URL "postgres://postgres@127.0.0.1:$port/postgres"
}

clean_private() {
	if [ -s "$PG_DIR/data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
		as_pg "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >&2
	fi
	rm -rf "$PG_DIR"
	log "removed $PG_DIR"
}

case "${1:-}" in
--clean)
	clean_private
	;;
"")
	if [ -n "${DATABASE_URL:-}" ]; then
		use_given_url
	elif local_server_ok; then
		log "using the PostgreSQL server on 127.0.0.1:$PORT_CHECK"
		setup_server "$PORT_CHECK"
	else
		log "no password-less PostgreSQL on 127.0.0.1:$PORT_CHECK; using a private cluster in $PG_DIR"
		port=$(start_private)
		setup_server "$port"
	fi
	;;
*)
	die "usage: $0 [--clean]"
	;;
esac
