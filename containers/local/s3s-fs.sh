#!/usr/bin/env bash
# A second, light S3 server for the upload benchmark: s3s-fs (an S3 server over a folder,
# written in Rust, from crates.io), bound to 127.0.0.1. Ceph, the tests' server, costs about
# 3 ms of CPU per small PUT on the two cores it shares with the app it is measuring; this one
# costs a fraction of that, so the benchmark can tell the app's own cost from the store's.
#
#   s3s-fs.sh start --owner PID
#       Builds s3s-fs into var/tools if missing (cargo install from crates.io, ~2 min once),
#       starts it on a free port over a new empty folder (in /dev/shm when it has 4 GiB free), with the tests' bucket, region and
#       keys (VETTER_TEST_S3_* must be set: start objectstore.sh first), and prints
#         export VETTER_BENCH_LIGHT_S3_ENDPOINT='http://127.0.0.1:PORT'
#       It stops within ~1 s of PID ending, and its folder is removed then.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VERSION=0.14.1 # 0.15 and later need a newer rustc than Debian's machines here have
TOOLS=$(realpath -m "$REPO_ROOT/var/tools")
BIN=$TOOLS/bin/s3s-fs

[ "${1:-}" = start ] && [ "${2:-}" = --owner ] && [[ ${3:-} =~ ^[0-9]+$ ]] ||
	die "usage: $0 start --owner PID"
owner=$3
for v in VETTER_TEST_S3_BUCKET VETTER_TEST_S3_ACCESS_KEY VETTER_TEST_S3_SECRET_KEY; do
	[ -n "${!v:-}" ] || die "$v is not set: start containers/local/objectstore.sh first"
done

if [ ! -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -qF "$VERSION"; then
	log "building s3s-fs $VERSION into $TOOLS (once)"
	cargo install --quiet --locked --root "$TOOLS" --features binary --version "$VERSION" s3s-fs >&2 ||
		die "cargo install s3s-fs failed"
fi

# Objects in memory where there is room (/dev/shm), as the Ceph of the tests keeps them
# (memstore): then neither store's figure includes the app host's file system.
base=${TMPDIR:-/tmp}
if [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((4 << 20)) ]; then
	base=/dev/shm
fi
data=$(mktemp -d "$base/vetter-s3s-fs.XXXXXX")
mkdir "$data/$VETTER_TEST_S3_BUCKET"
for ((i = 0; i < 100; i++)); do
	port=$((20000 + RANDOM % 12768))
	(: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
setsid "$BIN" --host 127.0.0.1 --port "$port" \
	--access-key "$VETTER_TEST_S3_ACCESS_KEY" --secret-key "$VETTER_TEST_S3_SECRET_KEY" \
	"$data" >"$data.log" 2>&1 </dev/null &
pid=$!
# The watchdog: the server and its folder go when the owner does.
setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.5; done
	kill "$2" 2>/dev/null; sleep 0.5; rm -rf "$3" "$3.log"' _ "$owner" "$pid" "$data" \
	</dev/null >/dev/null 2>&1 &
for ((i = 0; i < 100; i++)); do
	if (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		printf "export VETTER_BENCH_LIGHT_S3_ENDPOINT='http://127.0.0.1:%s'\n" "$port"
		exit 0
	fi
	kill -0 "$pid" 2>/dev/null || die "s3s-fs stopped at start: $(tail -5 "$data.log")"
	sleep 0.1
done
die "s3s-fs did not answer on port $port within 10 s"
