#!/usr/bin/env bash
# A differential campaign on a Slurm cluster (docs/fuzzing.md, "Many machines"): submits
# scripts/fuzz-slurm.sbatch as a job array of N shards, and a report job that runs once
# they have all ended and writes `rmapkit fuzz report` of their folders to OUT/report.txt.
#
#   scripts/fuzz-slurm.sh [--shards N] [--out OUT] [--rmapkit PATH] [--wait] [--sbatch OPTION]... -- FUZZ-OPTIONS...
#   scripts/fuzz-slurm.sh --sweep [...] -- WORKLOAD --param NAME=V1,V2,... [--designs ...]
#
#   --shards  tasks of the array, one shard each (default 4)
#   --out     the campaign's folder, on a file system every node sees (default: fuzz-campaign)
#   --rmapkit the rmapkit the nodes run (default: rmapkit, from their PATH)
#   --wait    wait for the report, print it, and exit 0 only when every scenario agreed
#   --sbatch  an option for both sbatch calls (--partition=..., --time=...); repeatable
#   --sweep   a design-lab sweep instead of a campaign (scripts/lab_sweep.py run, at the same
#             path on every node); the report job writes lab_sweep.py merge of the shards
#             to OUT/report.txt, with the plots in OUT/plots
# FUZZ-OPTIONS are rmapkit fuzz's (or with --sweep lab_sweep.py run's), the same for every shard.
set -uo pipefail
cd "$(dirname "$0")" && here=$PWD && cd - > /dev/null || exit 2
shards=4
out=fuzz-campaign
rmapkit=rmapkit
wait=0
sweep=()
sbatch_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --sweep) sweep=(--sweep); shift ;;
    --shards) shards=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rmapkit) rmapkit=$2; shift 2 ;;
    --wait) wait=1; shift ;;
    --sbatch) sbatch_opts+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "fuzz-slurm: unknown option $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done
command -v sbatch > /dev/null || { echo "fuzz-slurm: sbatch is not installed (apt-get install slurm-client)" >&2; exit 2; }
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "fuzz-slurm: --shards $shards: not a positive number" >&2; exit 2; }
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2

export RMAPKIT=$rmapkit LAB_SWEEP=$here/lab_sweep.py
array=$(sbatch --parsable "${sbatch_opts[@]}" --array="0-$((shards - 1))" --chdir="$out" \
  "$here/fuzz-slurm.sbatch" "$out" "${sweep[@]}" "$@") || { echo "fuzz-slurm: sbatch refused the array job" >&2; exit 1; }
array=${array%%;*}
echo "fuzz-slurm: job array $array: $shards shards into $out/shard-*"
shard_dirs=$(for ((i = 0; i < shards; i++)); do printf '%q ' "$out/shard-$i"; done)
report_cmd="$(printf '%q' "$rmapkit") fuzz report $shard_dirs"
[ ${#sweep[@]} -eq 0 ] || report_cmd="python3 $(printf '%q' "$LAB_SWEEP") merge $shard_dirs --plots $(printf '%q' "$out/plots")"
wait_opt=()
[ "$wait" -eq 1 ] && wait_opt=(--wait)
sbatch --parsable "${sbatch_opts[@]}" "${wait_opt[@]}" --job-name=rmapkit-fuzz-report --dependency="afterany:$array" \
  --chdir="$out" --output="$out/report.txt" --wrap="$report_cmd" > "$out/report-job.txt"
status=$?
echo "fuzz-slurm: report job $(cut -d';' -f1 "$out/report-job.txt"): $out/report.txt once the shards end"
[ "$wait" -eq 1 ] || exit "$status"
cat "$out/report.txt"
# The report job's status is rmapkit fuzz report's: 0 when every scenario of every shard
# agreed, 1 when one did not, 2 when a shard left no records (a sweep's: 0 when it merged).
exit "$status"
