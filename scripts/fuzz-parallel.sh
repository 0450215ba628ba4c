#!/usr/bin/env bash
# A differential campaign over many hosts with GNU parallel (docs/fuzzing.md, "Many
# machines"). Runs the campaign's N shards, one at a time per host (the kernel back end
# holds a machine-wide lock for KSM, swap and reclaim scenarios, so more would only queue),
# brings each shard's folder back into OUT, and prints `rmapkit fuzz report` of them all.
#
#   scripts/fuzz-parallel.sh [--hosts H1,H2,...] [--shards N] [--out OUT] [--rmapkit PATH] -- FUZZ-OPTIONS...
#   scripts/fuzz-parallel.sh --sweep [--hosts ...] [--shards N] [--out OUT] [--rmapkit PATH] -- WORKLOAD --param ...
#
#   --hosts    ssh logins as GNU parallel takes them (user@host, or : for this machine);
#              default : alone. Each host needs rmapkit (PATH, the same on every host), root
#              for the kernel back end, and the login needs no password (ssh keys).
#   --shards   how many shards the campaign is cut into (default: the number of hosts);
#              more shards than hosts evens out hosts of different speeds.
#   --out      where the shards' folders go (default: fuzz-campaign); a rerun into the same
#              folder resumes every shard where it stopped.
#   --rmapkit  the rmapkit to run on the hosts (default: rmapkit, from their PATH).
#   --ssh      the ssh command GNU parallel logs in with (default: ssh), e.g. 'ssh -p 2222 -i KEY'.
#   --sweep    a design-lab sweep instead of a campaign: each shard runs its points of
#              `scripts/lab_sweep.py run` (the same script path on every host), and the end
#              prints `lab_sweep.py merge` of them (kept in OUT/sweep.md, plots in OUT/plots)
# FUZZ-OPTIONS are rmapkit fuzz's (--count, --seeds, --profile, --time-limit, --model-only,
# ...), or with --sweep lab_sweep.py run's, the same for every shard; --shard and --out are
# set here.
# Exit status: 0 when every shard ran and every scenario agreed, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

hosts=":"
shards=""
out="fuzz-campaign"
rmapkit="rmapkit"
sweep=0
ssh_cmd=()
while [ $# -gt 0 ]; do
  case $1 in
    --ssh) ssh_cmd=(--ssh "$2"); shift 2 ;;
    --sweep) sweep=1; shift ;;
    --hosts) hosts=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rmapkit) rmapkit=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "fuzz-parallel: unknown option $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done
command -v parallel > /dev/null || { echo "fuzz-parallel: GNU parallel is not installed (apt-get install parallel)" >&2; exit 2; }
IFS=, read -r -a host_list <<< "$hosts"
[ -n "$shards" ] || shards=${#host_list[@]}
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "fuzz-parallel: --shards $shards: not a positive number" >&2; exit 2; }
for arg in "$@"; do
  case $arg in --shard|--shard=*|--out|--out=*) echo "fuzz-parallel: $arg is set here, per shard" >&2; exit 2 ;; esac
done

# A relative path to an rmapkit here is made absolute: the jobs run in OUT.
[[ $rmapkit == */* && -x $rmapkit ]] && rmapkit=$(realpath "$rmapkit")
mkdir -p "$out" && cd "$out" || exit 2
for ((i = 0; i < shards; i++)); do mkdir -p "shard-$i"; done
logins=()
transfer=()
for h in "${host_list[@]}"; do
  logins+=(--sshlogin "1/$h")  # 1/: one job at a time per host
  # A remote job runs in a fresh folder of its own (--workdir ...), removed afterwards; the
  # shard's folder goes there first, so that the shard resumes from its records.
  [ "$h" = ":" ] || transfer=(--workdir ... --transferfile 'shard-{}' --return 'shard-{}' --cleanup)
done

# Each job runs one shard into shard-I (on a remote host, in a folder of its own), and
# --return brings that folder back here; --cleanup removes it from the remote host. On
# this machine (:) the job runs here and nothing is copied. The exit status of rmapkit fuzz
# (1 when a scenario did not agree) is what --joblog records; the report below tells more.
job_args=$(printf ' %q' "$@")
if [ "$sweep" -eq 1 ]; then
  sweep_py=$here/lab_sweep.py
  job="python3 $(printf '%q' "$sweep_py") run$job_args --shard {}/$shards --out shard-{} --rmapkit $(printf '%q' "$rmapkit")"
else
  job="$(printf '%q' "$rmapkit") fuzz --quiet --shard {}/$shards --out shard-{}$job_args"
fi
parallel --no-notice "${ssh_cmd[@]}" "${logins[@]}" --joblog joblog.txt --tagstring 'shard {}' "${transfer[@]}" "$job" \
  ::: $(seq 0 $((shards - 1)))
status=$?

dirs=()
for ((i = 0; i < shards; i++)); do [ -n "$(ls -A "shard-$i" 2> /dev/null)" ] && dirs+=("shard-$i"); done
if [ ${#dirs[@]} -eq 0 ]; then
  echo "fuzz-parallel: no shard brought results back (see $out/joblog.txt)" >&2
  exit 1
fi
# The report runs here: with the rmapkit given when it is a path to a program here, else
# with the one in PATH.
report=rmapkit
[ -x "$rmapkit" ] && report=$rmapkit
if [ "$sweep" -eq 1 ]; then
  python3 "$sweep_py" merge "${dirs[@]}" --plots plots > sweep.md && cat sweep.md
else
  "$report" fuzz report "${dirs[@]}"
fi
report_status=$?
[ ${#dirs[@]} -eq "$shards" ] || echo "fuzz-parallel: only ${#dirs[@]} of $shards shards brought results back" >&2
[ "$status" -eq 0 ] && [ "$report_status" -eq 0 ] && [ ${#dirs[@]} -eq "$shards" ]
