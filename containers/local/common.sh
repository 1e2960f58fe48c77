# shellcheck shell=bash
# Helpers sourced by the scripts in containers/local. Diagnostics go to stderr.

# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }
