#!/usr/bin/env bash
# scripts/fuzz-parallel.sh with this machine as a remote host: GNU parallel's remote path
# (the shard's folder sent with --transferfile to the job's own folder, --workdir ...; the
# results brought back with --return over rsync; the job folder removed with --cleanup),
# through an ssh of the test's own that logs in to this machine without a network or an
# sshd: it drops ssh's options and the login and runs the command in a shell, in a home
# folder of its own, as ssh's remote side would. A rerun resumes every shard from the
# records it carries over. Exit 77 (skipped), saying why, without rsync, GNU parallel or root.
#   tests/cli/fuzz_parallel_ssh_test.sh RMAPKIT
set -uo pipefail
rmapkit=$(realpath "$1")
script=$(realpath "$(dirname "$0")/../../scripts/fuzz-parallel.sh")
for cmd in rsync parallel; do
  command -v "$cmd" > /dev/null || { echo "skipped: $cmd is not installed (Debian: rsync parallel)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "skipped: the kernel back end needs root"; exit 77; }

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
mkdir "$t/remote-home"
cat > "$t/ssh" << 'SSH'
#!/usr/bin/env bash
# ssh [OPTIONS] [--] HOST COMMAND...: the remote side, here.
while [ $# -gt 0 ]; do
  case $1 in
    -[BbcDEeFIiJLlmOoPpQRSWw]) shift 2 ;;  # an option and its value
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift  # the host
[ "${1:-}" = -- ] && shift
echo "$*" >> "$FAKE_SSH_LOG"
cd "$FAKE_SSH_HOME" || exit 255
# A login's environment, as sshd makes it: GNU parallel's remote worker runs the job with
# $SHELL, which a CI runner (or env -i) may not have set here.
user=$(id -un)
exec env -i PATH="$PATH" HOME="$FAKE_SSH_HOME" USER="$user" LOGNAME="$user" \
  SHELL="$(getent passwd "$user" | cut -d: -f7)" bash -c "$*"
SSH
chmod +x "$t/ssh"
export FAKE_SSH_HOME=$t/remote-home FAKE_SSH_LOG=$t/ssh.log

run() { "$script" --hosts root@remote --ssh "$t/ssh" --rmapkit "$rmapkit" --out "$t/campaign" "$@" 2>&1; }
log=$(run --shards 2 -- --count 6 --profile plain) || fail "a campaign on a remote host failed: $log"
grep -q "^fuzz report: 6 scenarios from 2 files" <<< "$log" || fail "the report does not count 6 scenarios: $log"
grep -Eq "^  all +6 +6 +0 +0 +0 +0" <<< "$log" || fail "not every scenario agreed: $log"
for i in 0 1; do
  [ -s "$t/campaign/shard-$i/results-shard-$i-of-2.jsonl" ] || fail "shard $i did not come back: $log"
done
# The shards ran on the remote side, their folders went there and came back by rsync, in
# job folders of their own (--workdir ...), which --cleanup removed.
# (GNU parallel sends the job itself hex-encoded to a perl worker; the rsync calls name the
# folders.)
[ "$(grep -c "GNU_Parallel_worker" "$FAKE_SSH_LOG")" -eq 2 ] || fail "the shards did not run on the remote side"
[ "$(grep -Ec "^cd ./.parallel/tmp/[^ ]+; rsync --server --sender .* ./shard-[01]$" "$FAKE_SSH_LOG")" -eq 2 ] ||
  fail "the shards' folders were not brought back by rsync: $(grep rsync "$FAKE_SSH_LOG")"
left=$(find "$FAKE_SSH_HOME" -path "*/.parallel/tmp/*" -name "*-*-*" -prune -print)
[ -z "$left" ] || fail "--cleanup left the remote job folders: $left"

log=$(run --shards 2 -- --count 6 --profile plain) || fail "the rerun failed: $log"
[ "$(grep -c "3 done by an earlier run" <<< "$log")" -eq 2 ] || fail "the rerun did not resume both shards: $log"
grep -q "^fuzz report: 6 scenarios from 2 files" <<< "$log" || fail "the rerun counted scenarios twice: $log"
echo "ok"
