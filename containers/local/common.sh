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

# Install the Debian packages named that are missing, with apt-get --no-install-recommends,
# as root or with password-less sudo; apt output goes to stderr. Returns 0 when all are
# installed (silently and quickly if they were already), 1 after printing the install
# command when they cannot be installed from here, 2 after a warning when this is not a
# Debian system. Exits if apt-get fails.
apt_install_missing() {
	local packages=("$@") installed p missing=() install
	if ! command -v dpkg-query >/dev/null 2>&1; then
		log "warning: not a Debian system; make sure these (or their equivalents) are installed: ${packages[*]}"
		return 2
	fi
	# One dpkg-query call for all packages; unknown ones are reported on stderr and left out.
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
	for p in "${packages[@]}"; do
		grep -qx "$p installed" <<<"$installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	install=(apt-get install -y --no-install-recommends "${missing[@]}")
	log "missing Debian packages: ${missing[*]}"
	if is_root && command -v apt-get >/dev/null 2>&1; then
		apt-get update >&2 || die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2 || die "${install[*]} failed"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo apt-get update >&2 || die "sudo apt-get update failed"
		sudo env DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2 || die "sudo ${install[*]} failed"
	else
		log "install them with:"
		log "  sudo apt-get update && sudo ${install[*]}"
		return 1
	fi
}
