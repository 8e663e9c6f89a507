#!/usr/bin/env bash
# A single-node Slurm on localhost, for the sharded-analysis tests and for trying pathkernel-slurm
# without a cluster. See Docs/scale-out.md and ../shared/design/slurm-local.md (the facts this
# follows: Debian 12's Slurm 22.05 and munge, run as root, no systemd, no cgroups).
#
#   Tools/slurm/cluster.sh start    install what is missing, start munged, slurmctld, slurmd;
#                                   wait until the node is idle; write DIR/env
#   Tools/slurm/cluster.sh stop     cancel the cluster's jobs, wait for them, stop the three daemons
#                                   by their pid files (each pid checked to still be that program)
#   Tools/slurm/cluster.sh status   what runs, and sinfo/squeue
#
# Everything lives in one directory, $PATHKERNEL_SLURM_DIR (default /tmp/pathkernel-slurm):
#   etc/slurm.conf  env  munge/ (socket, pid, log)  munge-key/ (0700, the key)  spool/  log/  run/
# Use the cluster with:  . "$PATHKERNEL_SLURM_DIR/env"   (exports SLURM_CONF)
set -euo pipefail

usage() {
  cat <<'EOF'
usage: Tools/slurm/cluster.sh start|stop|status [--help]

A single-node Slurm (Debian 12 slurmctld/slurmd/slurm-client 22.05 + munge) on localhost, as root,
without systemd or cgroups. All state is in $PATHKERNEL_SLURM_DIR (default /tmp/pathkernel-slurm).

  start   install the packages when missing (apt-get, services kept from starting), write the
          config, start munged, slurmctld and slurmd, wait until the node is idle, write
          $PATHKERNEL_SLURM_DIR/env (source it: it exports SLURM_CONF)
  stop    cancel the cluster's jobs, wait for them to end, stop the daemons this script started
          (by their pid files, each pid checked to be that program); never by name
  status  say what runs; sinfo and squeue

Environment:
  PATHKERNEL_SLURM_DIR          state directory (default /tmp/pathkernel-slurm)
  PATHKERNEL_SLURMCTLD_PORT     slurmctld port (default 6817)
  PATHKERNEL_SLURMD_PORT        slurmd port (default 6818)
  PATHKERNEL_SLURM_CPUS         CPUs the node advertises (default: slurmd -C, at least 4)
  PATHKERNEL_SLURM_NO_INSTALL=1 never run apt-get; fail when the packages are missing
EOF
}

DIR="${PATHKERNEL_SLURM_DIR:-/tmp/pathkernel-slurm}"
CTLD_PORT="${PATHKERNEL_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${PATHKERNEL_SLURMD_PORT:-6818}"
NODE=pknode
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "cluster.sh: $*" >&2; }
die() { echo "cluster.sh: error: $*" >&2; exit 1; }

# pid_of NAME PROGRAM: the pid in run/NAME.pid when that process is alive and runs PROGRAM.
pid_of() {
  local pidfile="$1" program="$2" pid exe
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  exe="$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)"
  [[ "$exe" == "$(readlink -f "$program")" ]] || return 1
  echo "$pid"
}

MUNGED=/usr/sbin/munged
SLURMCTLD=/usr/sbin/slurmctld
SLURMD=/usr/sbin/slurmd
MUNGE_PID="$DIR/munge/munged.pid"
CTLD_PID="$DIR/run/slurmctld.pid"
SLURMD_PID="$DIR/run/slurmd.pid"

installed() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
  done
}

install_packages() {
  installed && return 0
  [[ "${PATHKERNEL_SLURM_NO_INSTALL:-0}" == 1 ]] &&
    die "Slurm is not installed and PATHKERNEL_SLURM_NO_INSTALL=1; install it: apt-get install -y ${PACKAGES[*]}"
  command -v apt-get >/dev/null 2>&1 ||
    die "Slurm is not installed and there is no apt-get (this script knows Debian 12); install slurmctld, slurmd, slurm-client 22.05 and munge, then run it again"
  say "installing ${PACKAGES[*]} (apt-get; services are kept from starting)"
  # A policy-rc.d that exits 101 keeps the packages' post-install from starting the daemons
  # through invoke-rc.d. An existing one is put back afterwards.
  local policy=/usr/sbin/policy-rc.d backup=""
  if [[ -e "$policy" ]]; then
    backup="$(mktemp /usr/sbin/policy-rc.d.pathkernel.XXXXXX)"
    cp -p "$policy" "$backup"
  fi
  # shellcheck disable=SC2064
  trap "if [[ -n '$backup' ]]; then mv -f '$backup' '$policy'; else rm -f '$policy'; fi" EXIT
  printf '#!/bin/sh\n# written by pathkernel Tools/slurm/cluster.sh during its apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed (no network?); install ${PACKAGES[*]} by hand"
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2 ||
    die "apt-get install ${PACKAGES[*]} failed (see above)"
  if [[ -n "$backup" ]]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
  trap - EXIT
  installed || die "the packages ${PACKAGES[*]} are still not installed after apt-get"
}

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# cred_expire=10: a requeued job waits cred_expire + 1 s before it may start again (Slurm's default
# is 120 s); 10 s keeps the requeue test short. Real clusters keep their own setting.
write_config() {
  local host cpus mem hw
  host="$(hostname -s)"
  # slurmd -C prints the node's hardware line: CPUs, Boards, SocketsPerBoard, ..., RealMemory.
  hw="$("$SLURMD" -C 2>/dev/null | head -1)"
  cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
  mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
  [[ -n "$cpus" ]] || cpus="$(nproc)"
  [[ -n "$mem" ]] || mem=1000
  # Advertise at least 4 CPUs so that a 4-task array runs at once even on 2 cores (the tests check
  # correctness, not speed); SlurmdParameters=config_overrides makes slurmd accept more CPUs than
  # it finds instead of setting the node INVAL ("Low CPUs").
  ((cpus < 4)) && cpus=4
  cpus="${PATHKERNEL_SLURM_CPUS:-$cpus}"
  [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "PATHKERNEL_SLURM_CPUS must be a whole number >= 1, not '$cpus'"
  cat >"$CONF" <<EOF
# Written by pathkernel Tools/slurm/cluster.sh start; rewritten at every start.
ClusterName=pathkernel
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,kill_invalid_depend
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
MinJobAge=300
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DIR/env" <<EOF
# Source this file to use the pathkernel test cluster: . $DIR/env
export SLURM_CONF=$CONF
export PATHKERNEL_SLURM_DIR=$DIR
export PATHKERNEL_SLURM_NODE=$NODE
EOF
}

show_logs() {
  local f
  for f in "$DIR/munge/munged.log" "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
    [[ -s "$f" ]] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
  done
  return 0
}

# fail_start WHY: show the logs, stop whatever this start started, and exit with WHY.
fail_start() {
  show_logs
  say "$1; stopping what this start started"
  stop || true
  die "$1 (the daemons' own messages are above; logs in $DIR/log and $DIR/munge)"
}

start() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it runs the Slurm daemons as root; SlurmUser=root)"
  if pid_of "$CTLD_PID" "$SLURMCTLD" >/dev/null || pid_of "$SLURMD_PID" "$SLURMD" >/dev/null ||
     pid_of "$MUNGE_PID" "$MUNGED" >/dev/null; then
    die "a cluster already runs from $DIR (see: $0 status); stop it first: $0 stop"
  fi
  install_packages
  local p
  for p in "$CTLD_PORT" "$SLURMD_PORT"; do
    port_busy "$p" && die "TCP port $p is in use (another Slurm?); choose free ports with PATHKERNEL_SLURMCTLD_PORT and PATHKERNEL_SLURMD_PORT"
  done
  local t0=$SECONDS
  # The directory is this script's alone (start deletes its subdirectories): a new or empty one, or
  # one with the marker an earlier start wrote.
  [[ "$DIR" == /* && "$DIR" != / ]] || die "PATHKERNEL_SLURM_DIR must be an absolute path other than /, not '$DIR'"
  if [[ -e "$DIR" && ! -e "$DIR/.pathkernel-slurm" && -n "$(ls -A "$DIR" 2>/dev/null)" ]]; then
    die "$DIR exists, is not empty and was not made by cluster.sh; choose another PATHKERNEL_SLURM_DIR"
  fi
  mkdir -p "$DIR"
  echo "state directory of pathkernel Tools/slurm/cluster.sh; cluster.sh start deletes its subdirectories" >"$DIR/.pathkernel-slurm"
  # Fresh state at every start: no jobs or node state carried over from a previous run.
  rm -rf "${DIR:?}/spool" "${DIR:?}/log" "${DIR:?}/run" "${DIR:?}/munge" "${DIR:?}/etc"
  mkdir -p "$DIR/etc" "$DIR/spool/ctld" "$DIR/spool/d" "$DIR/log" "$DIR/run" "$DIR/munge" "$DIR/munge-key"
  # munged refuses a socket directory that is not world-executable and a key readable by others.
  chmod 755 "$DIR" "$DIR/munge"
  chmod 700 "$DIR/munge-key"
  if [[ ! -s "$DIR/munge-key/munge.key" ]]; then
    dd if=/dev/urandom of="$DIR/munge-key/munge.key" bs=1024 count=1 status=none
  fi
  chmod 600 "$DIR/munge-key/munge.key"
  write_config
  "$MUNGED" --key-file="$DIR/munge-key/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$MUNGE_PID" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge-key/munged.seed" --force || fail_start "munged did not start"
  "$SLURMCTLD" -f "$CONF" || fail_start "slurmctld did not start"
  "$SLURMD" -f "$CONF" -N "$NODE" || fail_start "slurmd did not start"
  local state="" i
  for ((i = 0; i < 300; i++)); do
    state="$(SLURM_CONF="$CONF" sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)"
    [[ "$state" == idle ]] && break
    [[ "$state" == inval* || "$state" == drain* ]] && break
    sleep 0.1
  done
  if [[ "$state" != idle ]]; then
    fail_start "the node is not idle (state '${state:-unknown}'; reason: $(SLURM_CONF="$CONF" sinfo -h -N -n "$NODE" -o %E 2>/dev/null || true))"
  fi
  say "Slurm up in $((SECONDS - t0)) s: node $NODE idle; use it with: . $DIR/env"
}

# stop_daemon NAME PIDFILE PROGRAM: TERM, wait up to 10 s, then KILL; only that pid.
stop_daemon() {
  local name="$1" pidfile="$2" program="$3" pid i
  if ! pid="$(pid_of "$pidfile" "$program")"; then
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ -d "/proc/$pid" ]] || break
    sleep 0.1
  done
  if [[ -d "/proc/$pid" ]] && pid_of "$pidfile" "$program" >/dev/null; then
    say "$name (pid $pid) did not stop in 10 s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$pidfile"
  say "stopped $name (pid $pid)"
}

stop() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  export SLURM_CONF="$CONF"
  local i pids=()
  if pid_of "$CTLD_PID" "$SLURMCTLD" >/dev/null; then
    # Cancel this cluster's jobs (SLURM_CONF points at this cluster only) and wait for them.
    if [[ -n "$(squeue -h -o %i 2>/dev/null || true)" ]]; then
      say "cancelling the remaining jobs: $(squeue -h -o %i | tr '\n' ' ')"
      scancel --full --user=root 2>/dev/null || true
    fi
    for ((i = 0; i < 150; i++)); do
      [[ -z "$(squeue -h -o %i 2>/dev/null || true)" ]] && break
      sleep 0.1
    done
  fi
  # Job steps still running on this node (slurmstepd and their tasks): found through this
  # slurmd's spool (scontrol listpids), so only this cluster's processes.
  if pid_of "$SLURMD_PID" "$SLURMD" >/dev/null; then
    for ((i = 0; i < 100; i++)); do
      mapfile -t pids < <(scontrol listpids '*' "$NODE" 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}' || true)
      ((${#pids[@]} == 0)) && break
      sleep 0.1
    done
    if ((${#pids[@]})); then
      say "job processes still running after 10 s, killing them: ${pids[*]}"
      kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
  fi
  stop_daemon slurmd "$SLURMD_PID" "$SLURMD"
  stop_daemon slurmctld "$CTLD_PID" "$SLURMCTLD"
  stop_daemon munged "$MUNGE_PID" "$MUNGED"
}

status() {
  local name pidfile program pid up=0
  for name in munged slurmctld slurmd; do
    case $name in
      munged) pidfile="$MUNGE_PID" program="$MUNGED" ;;
      slurmctld) pidfile="$CTLD_PID" program="$SLURMCTLD" ;;
      slurmd) pidfile="$SLURMD_PID" program="$SLURMD" ;;
    esac
    if pid="$(pid_of "$pidfile" "$program")"; then
      echo "$name: running (pid $pid)"
      up=$((up + 1))
    else
      echo "$name: not running"
    fi
  done
  if ((up == 3)); then
    SLURM_CONF="$CONF" sinfo || true
    SLURM_CONF="$CONF" squeue || true
    echo "use it with: . $DIR/env"
    return 0
  fi
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
