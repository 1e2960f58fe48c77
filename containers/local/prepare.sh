#!/usr/bin/env bash
# Install the Debian packages that `make run` and `make test` need. Idempotent, and
# silent and fast when everything is present.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

packages=(
	postgresql-15 postgresql-client-15 postgresql-15-q3c
	libcfitsio-dev pkg-config
	nginx-light libnginx-mod-stream openssl chromium chromium-driver
)

# astropy: the VOTable export test reads exports back with its parser.
python3 -c 'import astropy.io.votable' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check astropy >&2 || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages astropy >&2 || log "warning: could not install astropy with pip; the VOTable export test needs it"

if ! command -v dpkg-query >/dev/null 2>&1; then
	log "warning: not a Debian system; make sure these (or their equivalents) are installed: ${packages[*]}"
	exit 0
fi

# One dpkg-query call for all packages; unknown ones are reported on stderr and left out.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
	grep -qx "$p installed" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

install=(apt-get install -y --no-install-recommends "${missing[@]}")
log "missing Debian packages: ${missing[*]}"
if is_root && command -v apt-get >/dev/null 2>&1; then
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo apt-get update >&2
	sudo env DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2
else
	log "install them with:"
	log "  sudo apt-get update && sudo ${install[*]}"
	exit 1
fi
