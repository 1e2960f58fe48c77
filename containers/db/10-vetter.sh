#!/usr/bin/env bash
# First start of an empty data volume only (the postgres image runs /docker-entrypoint-initdb.d/
# then, as the superuser, against a server that listens on the local socket only).
#
# - q3c is not a trusted extension: only a superuser can create it. It goes into template1, so
#   every database made later has it, and into the app database.
# - The app's role is NOT a superuser. It owns the app database (so it can run the migrations),
#   and nothing else.
#
# Variables (containers/env/db.env): POSTGRES_USER (the superuser, default postgres),
# VETTER_DB_NAME, VETTER_DB_USER, VETTER_DB_PASSWORD.
set -euo pipefail

: "${VETTER_DB_NAME:=vetter}"
: "${VETTER_DB_USER:=vetter}"
: "${VETTER_DB_PASSWORD:?is not set (containers/env/db.env)}"
if [ "$VETTER_DB_USER" = "${POSTGRES_USER:-postgres}" ]; then
	echo "VETTER_DB_USER must not be the superuser ${POSTGRES_USER:-postgres}" >&2
	exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
	-v app_db="$VETTER_DB_NAME" -v app_user="$VETTER_DB_USER" -v app_password="$VETTER_DB_PASSWORD" <<-'SQL'
	\connect template1
	CREATE EXTENSION IF NOT EXISTS q3c;
	\connect postgres
	CREATE ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
	CREATE DATABASE :"app_db" OWNER :"app_user";
	\connect :"app_db"
	CREATE EXTENSION IF NOT EXISTS q3c;
	REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
SQL
echo "vetter: database $VETTER_DB_NAME owned by $VETTER_DB_USER (not a superuser), with q3c"
