#!/usr/bin/env bash
# A real S3 server for the tests: a single-node Ceph cluster from Debian's packages (one
# mon, one OSD and radosgw; no mgr, which S3 does not need), bound to 127.0.0.1 only, with
# all its state, logs and sockets in $VETTER_S3_DIR (default ./var/s3).
#
#   objectstore.sh start [--owner PID]
#       Installs the Ceph packages if missing, starts the cluster (or reuses the one that
#       runs from $VETTER_S3_DIR and answers) and prints, and only this, on stdout:
#         export VETTER_TEST_S3_ENDPOINT='http://127.0.0.1:PORT'  VETTER_TEST_S3_BUCKET
#         VETTER_TEST_S3_ACCESS_KEY  VETTER_TEST_S3_SECRET_KEY  VETTER_TEST_S3_REGION
#       so `eval "$(containers/local/objectstore.sh start --owner $$)"` sets them. The
#       bucket exists and is empty on a fresh start.
#       --owner PID: a detached watchdog stops the cluster within ~2 s of PID ending (of
#       every owner ending, when several starts share the cluster), so a killed `make test`
#       cleans up. A start without --owner keeps the cluster running until `stop`.
#   objectstore.sh stop     Stops radosgw, the OSD, then the mon; a no-op if none runs.
#   objectstore.sh clean    stop, then delete $VETTER_S3_DIR.
#
# Diagnostics go to stderr, the daemons' output to $VETTER_S3_DIR/log. A start that finds
# no cluster answering wipes the state and builds a new cluster (~4 s idle, more under
# load): nothing in it is meant to outlive a test run, and a fresh cluster has no stale
# ports, locks or half-written maps to recover from. The mon and radosgw take free random ports in 20000-32767 (the OSD
# binds 6800-7300, Ceph's own range, and probes for a free one itself), so checkouts side
# by side do not collide. The daemons run as the invoking user (root or not).
#
# The OSD keeps objects in memory (memstore, at most $VETTER_S3_MEMORY_GB GiB, default 4;
# an object takes about twice its size), nothing on disk: nothing in it outlives a run. On
# two cores bluestore on a sparse file cost Ceph about 10 ms of CPU per small PUT against 6
# for memstore, and that CPU is taken from the app and PostgreSQL the tests and benches
# measure; memstore also starts in about 2 s instead of 4.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SELF=$(realpath "${BASH_SOURCE[0]}")
S3_DIR=$(realpath -m "${VETTER_S3_DIR:-$REPO_ROOT/var/s3}")
MEM_GB=${VETTER_S3_MEMORY_GB:-4}
CONF=$S3_DIR/ceph.conf
BUCKET=vetter-test
# Fixed test credentials for a server that only listens on 127.0.0.1.
ACCESS_KEY=VETTERTESTACCESSKEY0
SECRET_KEY=vetterTestSecretKey0000000000000000000000
# RGW checks SigV4 signatures with the region the client names, whatever it is; us-east-1
# is what S3 clients assume by default.
REGION=us-east-1
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common curl)
START_TIMEOUT=${VETTER_S3_START_TIMEOUT:-120} # seconds for radosgw to answer

[[ $MEM_GB =~ ^[1-9][0-9]*$ ]] || die "VETTER_S3_MEMORY_GB must be a whole number of GiB, not '$MEM_GB'"
# Only our ceph.conf may steer the Ceph tools.
unset CEPH_ARGS CEPH_CONF

usage() { die "usage: $0 start [--owner PID] | stop | clean"; }

# Print `export NAME='value'`, single-quoted for the shell that evals it.
emit() {
	local q="'\\''"
	printf "export %s='%s'\n" "$1" "${2//\'/$q}"
}

# Serialize start, stop and the watchdog on $S3_DIR/lock (fd 9). Every process started
# from here closes fd 9 (`9>&-`): a daemon holding it would keep the lock forever.
# The lock file also marks the directory as ours: a start wipes it and clean deletes it,
# so a directory that has other files but no lock file (a mistyped VETTER_S3_DIR) is refused.
lock() {
	if [ -d "$S3_DIR" ] && [ ! -e "$S3_DIR/lock" ] && [ -n "$(ls -A "$S3_DIR")" ]; then
		die "$S3_DIR has files but was not made by $0 (no lock file): set VETTER_S3_DIR to a new or empty directory"
	fi
	mkdir -p "$S3_DIR"
	exec 9>>"$S3_DIR/lock"
	flock 9
}

# Field 22 of /proc/PID/stat, the start time: a pid together with it names one process.
# Fails for a process that is gone, zombies included (a killed owner stays one until its
# parent reaps it, and here PID 1 reaps orphans late).
start_time() {
	local stat rest fields
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) } # the command name in parentheses may hold spaces
	read -ra fields <<<"$rest"
	case ${fields[0]} in Z | X | x) return 1 ;; esac
	printf '%s\n' "${fields[19]}"
}

# The pid of daemon $1 (mon, osd, rgw, watchdog) if it runs from this directory: its command
# line names our ceph.conf (so a reused pid is not taken for it) and it is no zombie.
daemon_pid() {
	local f=$S3_DIR/run/$1.pid pid state
	[ -s "$f" ] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$CONF" || return 1
	state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] || return 1
	printf '%s\n' "$pid"
}

# Start "$@" as daemon $1 in a session of its own, detached from our stdin/stdout/stderr
# (so `$(objectstore.sh start)` returns), its output in log/$1.out, its pid in run/$1.pid,
# its working directory (where a core dump would go) $S3_DIR.
launch() {
	local name=$1
	shift
	rm -f "$S3_DIR/run/$name.pid"
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	(cd "$S3_DIR" && exec setsid bash -c 'echo $$ >"$0" && exec "$@"' "$S3_DIR/run/$name.pid" "$@") \
		</dev/null >>"$S3_DIR/log/$name.out" 2>&1 9>&- &
	# The pid file appears when the wrapper runs, before it execs the daemon.
	local i
	for ((i = 0; i < 500; i++)); do
		[ -s "$S3_DIR/run/$name.pid" ] && return 0
		sleep 0.02
	done
	die "could not start $name: $*"
}

# Stop daemon $1: TERM, then KILL after $2 seconds; return when it is gone.
stop_daemon() {
	local name=$1 grace=$2 pid i
	pid=$(daemon_pid "$name") || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 20; i++)); do
		daemon_pid "$name" >/dev/null || return 0
		sleep 0.05
	done
	log "$name (pid $pid) ignored SIGTERM for ${grace} s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		daemon_pid "$name" >/dev/null || return 0
		sleep 0.05
	done
	die "$name (pid $pid) does not stop"
}

# Stop everything, radosgw first (with the mon gone it hangs on TERM for ~20 s), the mon
# last. The state is thrown away at the next start, so a daemon gets a short grace only.
# Call with the lock held.
stop_cluster() {
	local pid
	if pid=$(daemon_pid watchdog) && [ "$pid" != "$$" ]; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
	stop_daemon rgw 5
	stop_daemon osd 5
	stop_daemon mon 5
	rm -f "$S3_DIR/env"
	rm -rf "$S3_DIR/owners"
}

running() { daemon_pid mon >/dev/null || daemon_pid osd >/dev/null || daemon_pid rgw >/dev/null; }

tail_log() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		log "--- last lines of $f:"
		tail -n 15 "$f" >&2
	done
}

# A port in 20000-32767 (below Linux's ephemeral range) that nothing listens on.
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12768))
		if ! (: <>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return
		fi
	done
	die "found no free port on 127.0.0.1"
}

# curl signed for our S3 user; prints the HTTP status.
s3_curl() {
	curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
		--aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" 2>/dev/null || true
}

endpoint() { printf 'http://127.0.0.1:%s\n' "$(<"$S3_DIR/rgw.port")"; }

# The cluster from this directory runs and its bucket answers. A busy server (a benchmark
# streaming a big object) gets three tries before a start replaces it.
answers() {
	local try
	[ -s "$S3_DIR/env" ] && [ -s "$S3_DIR/rgw.port" ] || return 1
	for try in 1 2 3; do
		daemon_pid mon >/dev/null && daemon_pid osd >/dev/null && daemon_pid rgw >/dev/null || return 1
		[ "$(s3_curl -I "$(endpoint)/$BUCKET")" = 200 ] && return 0
		log "the S3 server at $(endpoint) does not answer (try $try of 3)"
		sleep 1
	done
	return 1
}

write_conf() {
	local fsid=$1 mon_port=$2 asok
	# Unix socket paths are limited to 107 bytes; the admin sockets are only for debugging.
	asok="$S3_DIR/run/\$name.asok"
	[ ${#S3_DIR} -le 80 ] || asok=
	cat >"$CONF.tmp" <<-EOF
		# Written by containers/local/objectstore.sh; rewritten at every fresh start.
		[global]
		fsid = $fsid
		mon_host = [v2:127.0.0.1:$mon_port]
		public_addr = 127.0.0.1
		cluster_addr = 127.0.0.1
		ms_bind_msgr1 = false
		ms_bind_ipv6 = false
		auth_cluster_required = none
		auth_service_required = none
		auth_client_required = none
		# With auth none radosgw cannot reach the mon in the default 'secure' mode.
		ms_mon_client_mode = crc
		keyring = $S3_DIR/keyring
		run_dir = $S3_DIR/run
		crash_dir = $S3_DIR/crash
		log_file = $S3_DIR/log/\$name.log
		admin_socket =
		mon_data = $S3_DIR/mon
		osd_data = $S3_DIR/osd
		rgw_data = $S3_DIR/rgw
		# One OSD: pools of size 1, placement across OSDs rather than hosts, few PGs.
		osd_pool_default_size = 1
		osd_pool_default_min_size = 1
		mon_allow_pool_size_one = true
		osd_crush_chooseleaf_type = 0
		osd_pool_default_pg_num = 8
		osd_pool_default_pgp_num = 8
		osd_pool_default_pg_autoscale_mode = off
		mon_warn_on_pool_no_redundancy = false
		mon_allow_pool_delete = true
		# radosgw creates its pools one mon command at a time: ~1 s each by default.
		paxos_propose_interval = 0.05
		mon_data_avail_warn = 2
		mon_data_avail_crit = 1
		# Ceph shares two cores with the app it serves and measures: fewer threads handing
		# work to each other, and no checksums or debug logs on a loopback (about 3.6 -> 2.8
		# ms of Ceph's CPU per small PUT, measured with curl).
		ms_async_op_threads = 1
		ms_crc_data = false
		ms_crc_header = false
		debug_ms = 0/0
		debug_rgw = 0/0
		debug_osd = 0/0
		debug_objecter = 0/0
		debug_rados = 0/0
		debug_monc = 0/0
		debug_auth = 0/0
		debug_memstore = 0/0
		[mon]
		admin_socket = $asok
		[osd]
		admin_socket = $asok
		osd_objectstore = memstore
		memstore_device_bytes = $((MEM_GB << 30))
		osd_crush_initial_weight = 1
		osd_op_num_shards = 1
		osd_op_num_threads_per_shard = 1
		[client.rgw]
		admin_socket = $asok
		rgw_thread_pool_size = 8
		rgw_num_async_rados_threads = 2
		rgw_enable_usage_log = false
		rgw_enable_ops_log = false
		rgw_dynamic_resharding = false
		rgw_enable_quota_threads = false
		rgw_enable_lc_threads = false
		rgw_run_sync_thread = false
		# Reclaim the space of deleted and overwritten objects after a minute, not hours.
		rgw_gc_obj_min_wait = 60
		rgw_gc_processor_period = 60
	EOF
	mv "$CONF.tmp" "$CONF"
}

# Start a new cluster in $S3_DIR (the lock held, nothing running), leaving $S3_DIR/env.
fresh_cluster() {
	local fsid osd_uuid mon_port rgw_port mkfs_pid attempt i code
	find "$S3_DIR" -mindepth 1 -maxdepth 1 ! -name lock -exec rm -rf {} +
	mkdir -p "$S3_DIR"/{run,log,crash,mon,osd,rgw}
	fsid=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	local avail_kb
	avail_kb=$(df -Pk "$S3_DIR" | awk 'NR == 2 { print $4 }')
	if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((4 << 20)) ]; then
		log "warning: only $((avail_kb >> 10)) MiB free for $S3_DIR; the OSD fails when its sparse file cannot grow"
	fi

	# The OSD's store is made while the mon starts; it needs no mon.
	mon_port=$(free_port)
	write_conf "$fsid" "$mon_port"
	ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" --no-mon-config \
		</dev/null >>"$S3_DIR/log/osd-mkfs.out" 2>&1 9>&- &
	mkfs_pid=$!

	# The mon: its address is in the monmap, so a port taken meanwhile means a new mkfs.
	for attempt in 1 2 3; do
		if [ "$attempt" -gt 1 ]; then
			mon_port=$(free_port)
			write_conf "$fsid" "$mon_port"
		fi
		rm -rf "$S3_DIR/mon" "$S3_DIR/monmap"
		mkdir -p "$S3_DIR/mon"
		ceph-authtool --create-keyring "$S3_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
		monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$S3_DIR/monmap" >/dev/null
		ceph-mon -c "$CONF" -i a --mkfs --monmap "$S3_DIR/monmap" >>"$S3_DIR/log/mkfs.out" 2>&1 ||
			{
				tail_log "$S3_DIR/log/mkfs.out"
				die "ceph-mon --mkfs failed"
			}
		launch mon ceph-mon -c "$CONF" -i a -f
		for ((i = 0; i < 200; i++)); do
			daemon_pid mon >/dev/null || break
			(: <>"/dev/tcp/127.0.0.1/$mon_port") 2>/dev/null && break 2
			sleep 0.05
		done
		stop_daemon mon 1
		log "the mon did not come up on 127.0.0.1:$mon_port (attempt $attempt)"
		tail_log "$S3_DIR/log/mon.out" "$S3_DIR/log/mon.a.log"
		[ "$attempt" -lt 3 ] || die "could not start the Ceph mon"
	done

	# The OSD: register it and start it. CRUSH places it when it starts.
	i=$(ceph -c "$CONF" --connect-timeout 30 osd new "$osd_uuid" 2>>"$S3_DIR/log/mkfs.out") ||
		{
			tail_log "$S3_DIR/log/mkfs.out" "$S3_DIR/log/mon.a.log"
			die "ceph osd new failed"
		}
	[ "$i" = 0 ] || die "ceph osd new returned osd id '$i', expected 0"
	wait "$mkfs_pid" ||
		{
			tail_log "$S3_DIR/log/osd-mkfs.out" "$S3_DIR/log/osd.0.log"
			die "ceph-osd --mkfs failed"
		}
	launch osd ceph-osd -c "$CONF" -i 0 -f
	# Until the OSD is up radosgw's first read has nowhere to go, and radosgw only learns
	# that it is up from its next 5 s tick: start it after the OSD says it is active.
	for ((i = 0; i < 600; i++)); do
		grep -q 'state: booting -> active' "$S3_DIR/log/osd.0.log" 2>/dev/null && break
		daemon_pid osd >/dev/null || {
			tail_log "$S3_DIR/log/osd.out" "$S3_DIR/log/osd.0.log"
			die "the Ceph OSD died"
		}
		sleep 0.05
	done

	# radosgw binds its port only once it has created its pools, seconds later; in the
	# foreground it exits if the port is taken by then, and we try another.
	for attempt in 1 2 3; do
		rgw_port=$(free_port)
		launch rgw radosgw -c "$CONF" -n client.rgw -f --rgw_frontends "beast endpoint=127.0.0.1:$rgw_port"
		code=000
		for ((i = 0; i < START_TIMEOUT * 10; i++)); do
			daemon_pid mon >/dev/null || {
				tail_log "$S3_DIR/log/mon.out" "$S3_DIR/log/mon.a.log"
				die "the Ceph mon died"
			}
			daemon_pid osd >/dev/null || {
				tail_log "$S3_DIR/log/osd.out" "$S3_DIR/log/osd.0.log"
				die "the Ceph OSD died"
			}
			daemon_pid rgw >/dev/null || break
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$rgw_port/" 2>/dev/null || true)
			[ "$code" = 000 ] || break 2
			sleep 0.1
		done
		stop_daemon rgw 2
		tail_log "$S3_DIR/log/rgw.out" "$S3_DIR/log/client.rgw.log"
		if [ "$code" = 000 ] && [ "$i" -ge $((START_TIMEOUT * 10)) ]; then
			die "radosgw did not answer on 127.0.0.1:$rgw_port within $START_TIMEOUT s"
		fi
		log "radosgw exited before answering on 127.0.0.1:$rgw_port (attempt $attempt)"
		[ "$attempt" -lt 3 ] || die "could not start radosgw"
	done
	echo "$rgw_port" >"$S3_DIR/rgw.port"

	radosgw-admin -c "$CONF" user create --uid=vetter-test --display-name="vetter tests" \
		--access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$S3_DIR/log/admin.out" 2>&1 ||
		{
			tail_log "$S3_DIR/log/admin.out"
			die "radosgw-admin user create failed"
		}
	code=$(s3_curl -X PUT "$(endpoint)/$BUCKET")
	[ "$code" = 200 ] || die "creating bucket $BUCKET failed: HTTP $code"

	{
		emit VETTER_TEST_S3_ENDPOINT "$(endpoint)"
		emit VETTER_TEST_S3_BUCKET "$BUCKET"
		emit VETTER_TEST_S3_ACCESS_KEY "$ACCESS_KEY"
		emit VETTER_TEST_S3_SECRET_KEY "$SECRET_KEY"
		emit VETTER_TEST_S3_REGION "$REGION"
	} >"$S3_DIR/env.tmp"
	mv "$S3_DIR/env.tmp" "$S3_DIR/env"
}

ensure_packages() {
	local rc=0 cmd
	apt_install_missing "${PACKAGES[@]}" || rc=$?
	[ "$rc" -ne 1 ] || die "the Ceph packages are missing"
	for cmd in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl flock setsid; do
		command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (Debian packages: ${PACKAGES[*]} curl util-linux)"
	done
}

start() {
	local owner='' t0=$SECONDS
	while [ $# -gt 0 ]; do
		case $1 in
		--owner)
			[ $# -ge 2 ] || usage
			owner=$2
			shift 2
			;;
		*) usage ;;
		esac
	done
	if [ -n "$owner" ]; then
		if ! [[ $owner =~ ^[0-9]+$ ]] || [ ! -d "/proc/$owner" ]; then
			die "--owner $owner: no such process"
		fi
	fi
	ensure_packages
	lock
	if answers; then
		log "reusing the S3 server running from $S3_DIR at $(endpoint)"
	else
		running && {
			log "stopping the unresponsive cluster in $S3_DIR"
			stop_cluster
		}
		log "starting a single-node Ceph S3 server in $S3_DIR"
		trap 'log "start failed: stopping what was started"; stop_cluster' EXIT
		fresh_cluster
		trap - EXIT
		log "S3 at $(endpoint), bucket $BUCKET, ready in $((SECONDS - t0)) s (logs: $S3_DIR/log)"
	fi

	# Owners: a file per owner holding its start time; `keep` when a start had none.
	mkdir -p "$S3_DIR/owners"
	if [ -n "$owner" ]; then
		# Through a variable: a failed start_time must not leave an empty file, which a dead
		# pid's (empty) start time would match for ever.
		local since
		since=$(start_time "$owner") || die "--owner $owner: no such process"
		printf '%s\n' "$since" >"$S3_DIR/owners/$owner"
		if ! daemon_pid watchdog >/dev/null; then
			launch watchdog bash "$SELF" watchdog "$CONF"
		fi
	else
		: >"$S3_DIR/owners/keep"
	fi
	cat "$S3_DIR/env"
}

# True while some owner lives (dead owners' files are removed) or a start had no owner.
owned() {
	local f pid live=1
	[ -e "$S3_DIR/owners/keep" ] && return 0
	for f in "$S3_DIR"/owners/*; do
		[ -e "$f" ] || continue
		pid=${f##*/}
		if [ -s "$f" ] && [ "$(start_time "$pid" || true)" = "$(cat "$f")" ]; then
			live=0
		else
			rm -f "$f"
		fi
	done
	return $live
}

# Internal: started detached by `start --owner`; stops the cluster once no owner is left.
# Its last argument, our ceph.conf, is only there for daemon_pid to recognise it.
watchdog() {
	while sleep 1; do
		# Stopped, restarted by someone else, or kept by a start without an owner: this
		# watchdog is not needed any more.
		[ -e "$S3_DIR/env" ] && [ "$(daemon_pid watchdog || true)" = $$ ] || exit 0
		[ ! -e "$S3_DIR/owners/keep" ] || exit 0
		owned && continue
		lock
		if ! owned; then
			log "$(date '+%F %T') no owner left: stopping the cluster"
			stop_cluster
			exit 0
		fi
		flock -u 9
	done
}

case "${1:-}" in
start)
	shift
	start "$@"
	;;
stop)
	[ $# -eq 1 ] || usage
	[ -d "$S3_DIR" ] || exit 0
	lock
	running && log "stopping the Ceph S3 server in $S3_DIR"
	stop_cluster
	;;
clean | --clean)
	[ $# -eq 1 ] || usage
	if [ -d "$S3_DIR" ]; then
		lock
		stop_cluster
		rm -rf "$S3_DIR"
		log "removed $S3_DIR"
	fi
	;;
watchdog)
	watchdog
	;;
*)
	usage
	;;
esac
