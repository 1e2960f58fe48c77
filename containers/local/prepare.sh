#!/usr/bin/env bash
# Install the Debian packages that `make run` and `make test` need. Idempotent, and
# silent and fast when everything is present.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

packages=(
	postgresql-15 postgresql-client-15 postgresql-15-q3c
	libcfitsio-dev pkg-config
	nginx-light libnginx-mod-stream openssl chromium chromium-driver
	# xmllint: the tests validate VOEvent documents against the IVOA schema.
	libxml2-utils
	# The read API's documented Python example and the VOTable export test run
	# under Debian's /usr/bin/python3 with these.
	python3-requests python3-astropy
)

# Not a Debian system: the helper warns and returns 2, and this script succeeds as before.
apt_install_missing "${packages[@]}" || [ $? -eq 2 ]
