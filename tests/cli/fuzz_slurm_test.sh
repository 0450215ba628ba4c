#!/usr/bin/env bash
# scripts/fuzz-slurm.sh against a single-node Slurm that this test starts and stops itself:
# munged, slurmctld and slurmd on this host, with their own key, ports, state and logs in a
# temporary folder (nothing of the machine's own configuration is read or changed). A clean
# campaign of 2 shards agrees and the report job prints its report; a model with a planted
# fault makes the report job fail; a design-lab sweep runs as an array too. Exit 77 (skipped), saying why, when Slurm or munge is not
# installed, when not root, or when the daemons do not come up.
#   tests/cli/fuzz_slurm_test.sh RMAPKIT
set -uo pipefail
rmapkit=$(realpath "$1")
script=$(realpath "$(dirname "$0")/../../scripts/fuzz-slurm.sh")
for cmd in munged slurmctld slurmd sbatch sinfo scancel python3; do
  command -v "$cmd" > /dev/null || { echo "skipped: $cmd is not installed (Debian: slurm-wlm munge)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "skipped: the kernel back end needs root"; exit 77; }

t=$(mktemp -d)
chmod 755 "$t"  # munged wants its socket's folder open to everyone
stop() {
  [ -f "$t/slurm.conf" ] && SLURM_CONF=$t/slurm.conf scancel --quiet --user=root 2> /dev/null
  for d in slurmd slurmctld munged; do
    [ -f "$t/$d.pid" ] || continue
    pid=$(cat "$t/$d.pid")
    kill "$pid" 2> /dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  done
  rm -rf "$t"
}
trap stop EXIT
fail() {
  echo "FAIL: $*"
  tail -n 20 "$t"/*.log 2> /dev/null
  exit 1
}

# Two free TCP ports, for slurmctld and slurmd.
read -r port1 port2 < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
host=$(hostname -s)
dd if=/dev/urandom of="$t/munge.key" bs=1024 count=1 status=none
chmod 600 "$t/munge.key"
munged --force --socket="$t/munge.sock" --key-file="$t/munge.key" --pid-file="$t/munged.pid" \
  --log-file="$t/munged.log" --seed-file="$t/munged.seed" || { echo "skipped: munged did not start"; exit 77; }
mkdir -p "$t/state" "$t/spool"
cat > "$t/slurm.conf" << CONF
ClusterName=rmapkit-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port1
SlurmdPort=$port2
AuthType=auth/munge
AuthInfo=socket=$t/munge.sock
CredType=cred/munge
StateSaveLocation=$t/state
SlurmdSpoolDir=$t/spool
SlurmctldPidFile=$t/slurmctld.pid
SlurmdPidFile=$t/slurmd.pid
SlurmctldLogFile=$t/slurmctld.log
SlurmdLogFile=$t/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=rmapkit Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$t/slurm.conf
slurmctld || { echo "skipped: slurmctld did not start"; exit 77; }
slurmd || { echo "skipped: slurmd did not start"; exit 77; }
for ((i = 0; i < 60; i++)); do
  sinfo --noheader --states=idle 2> /dev/null | grep -q idle && break
  sleep 0.5
done
sinfo --noheader --states=idle 2> /dev/null | grep -q idle || {
  echo "skipped: the single-node Slurm did not come up in 30 s"
  tail -n 5 "$t"/slurm*.log
  exit 77
}

log=$("$script" --shards 2 --out "$t/clean" --rmapkit "$rmapkit" --wait --sbatch --time=10 -- --count 6 --profile plain 2>&1) ||
  fail "a clean campaign failed: $log"
grep -q "^fuzz report: 6 scenarios from 2 files" <<< "$log" || fail "the report does not count 6 scenarios: $log"
grep -Eq "^  all +6 +6 +0 +0 +0 +0" <<< "$log" || fail "not every scenario agreed: $log"
ls "$t/clean"/rmapkit-fuzz-*_0.out "$t/clean"/rmapkit-fuzz-*_1.out > /dev/null || fail "the array did not run two tasks"

if log=$("$script" --shards 2 --out "$t/planted" --rmapkit "$rmapkit" --wait -- --count 2 --plant-fault read-as-write 2>&1); then
  fail "a planted fault went unnoticed: $log"
fi
[ "$(grep -c "^      case $t/planted/shard-[01]/plain-[01].rmap" <<< "$log")" -eq 2 ] ||
  fail "the report does not list the two minimised cases: $log"
log=$("$script" --sweep --shards 2 --out "$t/sweep" --rmapkit "$rmapkit" --wait -- fanout --param children=1,8 \
  --param pages=2 --designs linux-6 2>&1) || fail "the sweep failed: $log"
[ "$(grep -Ec '^\| (1|8) \| 2 \| linux-6 \|' <<< "$log")" -eq 2 ] || fail "the sweep's table is not there: $log"
echo "ok"
