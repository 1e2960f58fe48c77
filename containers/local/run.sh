#!/usr/bin/env bash
# Build the app and serve it locally. `make run` calls this after setting DATABASE_URL.
# Secrets that are not in the environment are created once under var/ and reused.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"
: "${DATABASE_URL:?is not set: start the app with make run}"

cargo build --bin vetter
bin=target/debug/vetter
mkdir -p var

# Print the contents of var/$1, creating it first with the output of "${@:2}".
secret_file() {
	local f=var/$1
	shift
	if [ ! -s "$f" ]; then
		(umask 077 && "$@" >"$f.tmp") || {
			rm -f "$f.tmp"
			die "could not create $f with: $*"
		}
		mv "$f.tmp" "$f"
	fi
	chmod 600 "$f" && cat "$f"
}
random_password() {
	local pw
	pw=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 20 || true) # tr ends on SIGPIPE
	[ ${#pw} -eq 20 ] || die "could not make a random password"
	printf '%s\n' "$pw"
}

# Plain assignments, so that a failing $(...) stops the script.
[ -n "${VETTER_SECRET_KEY:-}" ] || VETTER_SECRET_KEY=$(secret_file secret.key "$bin" gen-secret)
[ -n "${VETTER_ADMIN_PASSWORD:-}" ] || VETTER_ADMIN_PASSWORD=$(secret_file admin-password random_password)
export VETTER_SECRET_KEY VETTER_ADMIN_PASSWORD
export VETTER_MEDIA_ROOT=${VETTER_MEDIA_ROOT:-$REPO_ROOT/var/media}
export VETTER_ADMIN_USERNAME=${VETTER_ADMIN_USERNAME:-admin}
export VETTER_BIND=${VETTER_BIND:-127.0.0.1:8000}
export VETTER_PUBLIC_URL=${VETTER_PUBLIC_URL:-http://127.0.0.1:8000}
mkdir -p "$VETTER_MEDIA_ROOT"

# Demo data, if this build has the subcommand. Migrate first: demo may run before serve ever has.
help=$("$bin" --help 2>&1 || true)
if grep -qw demo <<<"$help"; then
	if grep -qw migrate <<<"$help"; then
		"$bin" migrate || log "warning: vetter migrate failed"
	fi
	"$bin" demo --if-empty || log "warning: vetter demo --if-empty failed"
fi

cat <<MSG

  vetter:      $VETTER_PUBLIC_URL
  admin login: $VETTER_ADMIN_USERNAME / $VETTER_ADMIN_PASSWORD
               (the admin is created on the first start with an empty users table)

MSG
exec "$bin" serve
