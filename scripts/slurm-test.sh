#!/usr/bin/env bash
# End-to-end test on a real scheduler: a one-node Slurm cluster on this machine (Debian's
# slurm-wlm and munge, installed if missing), configured in a temporary folder, started
# without systemd, used by the `slurm_array_and_join` test of tests/segments.rs (array job
# of segments + dependent join via deploy/slurm/faceenhance-segments.sh), and stopped.
# Needs root (or sudo) for munged/slurmd. Run by scripts/test.sh after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[slurm-test] %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

missing=()
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

D=$(mktemp -d /tmp/faceenhance-slurm.XXXXXX)
chmod 755 "$D"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p "$D"/{state,spool,munge}
cat > "$D/slurm.conf" <<CONF
ClusterName=faceenhance-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket.2
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$D/slurm.conf

stop() {
  set +e
  [ -f "$D/slurmd.pid" ] && $SUDO kill "$(cat "$D/slurmd.pid")" 2>/dev/null
  [ -f "$D/slurmctld.pid" ] && $SUDO kill "$(cat "$D/slurmctld.pid")" 2>/dev/null
  [ -f "$D/munged.pid" ] && $SUDO kill "$(cat "$D/munged.pid")" 2>/dev/null
  sleep 1
  $SUDO rm -rf "$D"
}
trap stop EXIT

log "munge key and munged ($D)"
$SUDO dd if=/dev/urandom of="$D/munge/munge.key" bs=1 count=1024 status=none
$SUDO chmod 400 "$D/munge/munge.key"
$SUDO munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket.2" \
  --pid-file="$D/munged.pid" --log-file="$D/munged.log" --seed-file="$D/munge/seed"
log "slurmctld and slurmd"
$SUDO env SLURM_CONF="$SLURM_CONF" slurmctld
$SUDO env SLURM_CONF="$SLURM_CONF" slurmd
for _ in $(seq 1 60); do
  sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)' && break
  sleep 1
done
sinfo || { cat "$D"/*.log >&2; exit 1; }

log "array job + join through deploy/slurm/faceenhance-segments.sh"
FACEENHANCE_SLURM=1 cargo test --release -p faceenhance-cli --test segments -- \
  --ignored --exact slurm_array_and_join --nocapture
