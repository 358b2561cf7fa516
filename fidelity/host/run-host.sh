#!/usr/bin/env bash
# Run the fidelity protocol of the QEMU guest (fidelity/qemu/init) on this machine itself, bounded
# to a few GiB: fragment memory in one SHAPE with fidelity/qemu/fragment.c, take a snapshot with
# `mapcontig snapshot`, then measure what nr_hugepages delivers before and after compact_memory.
# By hand, as root, not in CI (issue 8). See docs/fidelity.md.
#
#   fidelity/host/run-host.sh SHAPE [--budget-mib 3072] [--extra-hugepages 128] [--hugepages N]
#                             [--seed N] [--settle S] [--out DIR]
#
#   SHAPE            anon-holes | page-cache | unmovable | mixed (fragment.c)
#   --budget-mib M   the fragmenter's budget: min(MemFree - 96 MiB, M). Default 3072.
#   --hugepages N    nr_hugepages to ask for. Default: the free 2 MiB blocks of zone Normal in the
#                    snapshot's buddyinfo (order 9 + 2 x order 10) plus --extra-hugepages (128,
#                    i.e. 256 MiB): with deferred_init=lazy the kernel serves a write from Normal's
#                    free blocks first and then grows Normal 128 MiB at a time, so N just past the
#                    free blocks shows both (docs/fidelity.md, "Choosing N").
#   --settle S       first wait up to S seconds (default 120) for zone Normal's pcp lists to hold
#                    under 64 Ki pages: a previous run's exit parks up to ~1.5 GiB there, and they
#                    drain back slowly (vmstat's decay_pcp_high). 0: do not wait.
#   --out DIR        default fidelity/host/runs/SHAPE-<n>, the first n not taken.
#
# The machine is shared: the fragmenter is killed, nr_hugepages is restored to its value at start,
# and the data files and the tmpfs small files are deleted on every exit, error or signal. No other
# sysctl is written; drop_caches is never used. One run at a time (flock).
#
# Leaves DIR/result/ (each step's /proc files, huge-regions.json, the fragmenter's output,
# result.env), DIR/result.json (make-result.mjs) and DIR/snapshot.tar.gz (the snapshot, tarred
# at the end; readSnapshot and compare.ts read the tarball).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "run-host: $*" >&2; exit 1; }

shape=${1:-}
[ -n "$shape" ] || die "usage: run-host.sh SHAPE [--budget-mib M] [--extra-hugepages N] [--hugepages N] [--seed N] [--out DIR]"
shift
case $shape in anon-holes | page-cache | unmovable | mixed) ;; *) die "unknown shape '$shape'" ;; esac
budget_mib=3072 extra=128 want=0 seed=0 out= settle=120
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --budget-mib) budget_mib=$2 ;;
    --extra-hugepages) extra=$2 ;;
    --hugepages) want=$2 ;;
    --seed) seed=$2 ;;
    --settle) settle=$2 ;;
    --out) out=$2 ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[ "$(id -u)" = 0 ] || die "needs root (kpageflags, pagetypeinfo, nr_hugepages, compact_memory)"
[ "$(uname -s)" = Linux ] || die "needs Linux"
[ "$budget_mib" -ge 64 ] && [ "$budget_mib" -le 6144 ] || die "--budget-mib $budget_mib: keep it between 64 and 6144 on a shared machine"

if [ -z "$out" ]; then
  n=1
  while [ -e "$here/runs/$shape-$n" ]; do n=$((n + 1)); done
  out=$here/runs/$shape-$n
fi
[ ! -e "$out" ] || die "$out exists"

# One run at a time on this machine.
exec 9>/run/mapcontig-fidelity-host.lock
flock -n 9 || die "another run-host.sh holds /run/mapcontig-fidelity-host.lock"

# ---- build the fragmenter (dynamic is fine on the host) ----------------------------------------
cache=$here/.cache
mkdir -p "$cache"
frag=$cache/fragment
if [ ! -x "$frag" ] || [ "$repo/fidelity/qemu/fragment.c" -nt "$frag" ]; then
  gcc -O2 -Wall -Wextra -o "$frag.tmp" "$repo/fidelity/qemu/fragment.c"
  mv "$frag.tmp" "$frag"
fi

# ---- cleanup, always -----------------------------------------------------------------------------
hp=/proc/sys/vm/nr_hugepages
hp_orig=$(cat $hp)
fpid=
work=$(mktemp -d /var/tmp/mapcontig-host.XXXXXX)   # data files (ext4 page cache), ready file
small=$(mktemp -d /dev/shm/mapcontig-host.XXXXXX)   # the small files: tmpfs, as in the guest
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$fpid" ] && kill -0 "$fpid" 2>/dev/null; then
    kill "$fpid" 2>/dev/null || true
    wait "$fpid" 2>/dev/null || true
  fi
  [ "$(cat $hp)" = "$hp_orig" ] || echo "$hp_orig" > $hp || echo "run-host: could not restore nr_hugepages=$hp_orig" >&2
  rm -rf "$work" "$small" # unlinking the data files drops their page cache with them
  [ $rc = 0 ] || echo "run-host: failed (exit $rc); nr_hugepages is $(cat $hp) (was $hp_orig), fragmenter stopped" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ms() { echo $(($(date +%s%N) / 1000000)); }
R=$out/result
mkdir -p "$R"
step() { # step NAME: the allocator's state at a step
  mkdir -p "$R/$1/proc"
  for f in buddyinfo pagetypeinfo vmstat zoneinfo meminfo loadavg; do cat /proc/$f > "$R/$1/proc/$f"; done
}
normal_managed() { awk '$1 == "Node" && $4 == "Normal" {z = 1; next} $1 == "Node" {z = 0} z && $1 == "managed" {print $2; exit}' /proc/zoneinfo; }
normal_start() { awk '$1 == "Node" && $4 == "Normal" {z = 1; next} $1 == "Node" {z = 0} z && $1 == "start_pfn:" {print $2; exit}' /proc/zoneinfo; }
free2m() { # free2m BUDDYINFO ZONE: free 2 MiB blocks (order 9 + 2 x order 10)
  awk -v z="$2" '$4 == z {print $14 + 2 * $15}' "$1"
}
regions() { # regions NAME: where the hugetlb pages are (kpageflags), while the pool is held
  (cd "$repo" && npx tsx fidelity/host/huge-regions.ts --grown-from "$grown_from") > "$R/$1/huge-regions.json"
}

normal_pcp() { awk '$1 == "Node" && $4 == "Normal" {z = 1; next} $1 == "Node" {z = 0} z && $1 == "count:" {s += $2} END {print s + 0}' /proc/zoneinfo; }
tw=$(ms)
while [ "$(normal_pcp)" -ge 65536 ] && [ $(($(ms) - tw)) -lt $((settle * 1000)) ]; do sleep 2; done
settle_ms=$(($(ms) - tw))
pcp_at_start=$(normal_pcp)

t_start=$(ms)
qemus=$(pgrep -c -f qemu-system || true)
step start

# ---- data files: sparse 64 MiB files on ext4, 1.25 x the budget as in the guest (16 x 64 MiB
# for ~820 MiB); only the shapes that read them need them --------------------------------------
if [ "$shape" = page-cache ] || [ "$shape" = mixed ]; then
  nf=$(((budget_mib * 5 / 4 + 63) / 64))
  for ((i = 0; i < nf; i++)); do truncate -s 64M "$work/$(printf 'f%03d' "$i")"; done
fi

# ---- fragment ------------------------------------------------------------------------------------
t0=$(ms)
"$frag" "$shape" --seed "$seed" --budget-mib "$budget_mib" --dir "$work" --small-dir "$small" \
  --ready "$work/ready" > "$R/fragment.out" 2> "$R/fragment.err" &
fpid=$!
while [ ! -e "$work/ready" ]; do
  kill -0 "$fpid" 2>/dev/null || die "fragment $shape exited before it was ready: $(cat "$R/fragment.err")"
  [ $(($(ms) - t0)) -lt 600000 ] || die "fragment $shape not ready after 600 s"
  sleep 0.1
done
t1=$(ms)
step fragmented

# ---- snapshot ------------------------------------------------------------------------------------
(cd "$repo" && npx tsx src/cli/main.ts snapshot --out "$out/snapshot" --quiet) > "$R/snapshot.out" 2>&1 ||
  die "snapshot failed: $(tail -n 5 "$R/snapshot.out")"
t2=$(ms)

# ---- choose N ------------------------------------------------------------------------------------
free_normal=$(free2m "$out/snapshot/proc/buddyinfo" Normal)
free_dma32=$(free2m "$out/snapshot/proc/buddyinfo" DMA32)
cap_note=
if [ "$want" -le 0 ]; then
  want=$((free_normal + extra))
  # Never hold more than MemAvailable - 4 GiB in the pool: others use this machine.
  avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  cap=$(((avail_kb / 1024 - 4096) / 2))
  if [ "$want" -gt "$cap" ]; then want=$cap cap_note="capped at (MemAvailable - 4 GiB) / 2 MiB"; fi
fi
[ "$want" -gt 0 ] || die "nothing to ask for (N=$want)"
m0=$(normal_managed)
grown_from=$(($(normal_start) + (m0 + 32767) / 32768 * 32768))

# ---- the measurement: the guest's protocol (fidelity/qemu/init) ----------------------------------
step before-hugepages
t3=$(ms); echo "$want" > $hp; t4=$(ms)
before=$(cat $hp)
m1=$(normal_managed)
step after-hugepages
regions after-hugepages
echo "$want" > $hp
before2=$(cat $hp)
m2=$(normal_managed)
echo 0 > $hp
step after-free
t5=$(ms); echo 1 > /proc/sys/vm/compact_memory; t6=$(ms)
step after-compact
t7=$(ms); echo "$want" > $hp; t8=$(ms)
after=$(cat $hp)
m3=$(normal_managed)
step after-compact-hugepages
regions after-compact-hugepages
echo "$want" > $hp
after2=$(cat $hp)
m4=$(normal_managed)
echo 0 > $hp
step end
t9=$(ms)

cat > "$R/result.env" <<EOF
shape=$shape
seed=$seed
budget_cap_mib=$budget_mib
asked=$want
asked_rule=$([ -n "$cap_note" ] && echo "$cap_note" || echo "free 2 MiB blocks of Normal in the snapshot ($free_normal) + $extra")
free_2m_blocks_normal_at_snapshot=$free_normal
free_2m_blocks_dma32_at_snapshot=$free_dma32
delivered_before_compaction=$before
delivered_before_compaction_second_write=$before2
delivered_after_compaction=$after
delivered_after_compaction_second_write=$after2
normal_managed_at_snapshot=$m0
normal_managed_after_first_write=$m1
normal_managed_after_second_write=$m2
normal_managed_after_compaction_first_write=$m3
normal_managed_after_compaction_second_write=$m4
normal_grown_from_pfn=$grown_from
fragment_ms=$((t1 - t0))
snapshot_ms=$((t2 - t1))
hugepages_write_ms=$((t4 - t3))
compact_memory_ms=$((t6 - t5))
hugepages_write_after_compaction_ms=$((t8 - t7))
measure_ms=$((t9 - t2))
total_ms=$((t9 - t_start))
qemu_processes_at_start=$qemus
settle_ms=$settle_ms
normal_pcp_pages_at_start=$pcp_at_start
nr_hugepages_at_start=$hp_orig
EOF
node "$here/make-result.mjs" "$out" > "$out/result.json"
# The repository's lint (biome check .) covers these JSON files: store them formatted.
(cd "$repo" && npx biome format --write "$out/result.json" "$R"/*/huge-regions.json > /dev/null 2>&1) || true
# Keep the snapshot as one tarball (readSnapshot reads it as it is; its kpage files stay gzip inside),
# and only once it reads back whole.
tar -C "$out/snapshot" --sort=name --owner=0 --group=0 --numeric-owner -cf - . | gzip -n -9 > "$out/snapshot.tar.gz.tmp"
(cd "$repo" && npx tsx -e "import('./src/snapshot/read.ts').then((m) => m.readSnapshot('$out/snapshot.tar.gz.tmp'))") ||
  die "$out/snapshot.tar.gz.tmp does not read back; $out/snapshot kept"
mv "$out/snapshot.tar.gz.tmp" "$out/snapshot.tar.gz"
rm -rf "$out/snapshot"
echo "run-host: $shape: asked $want (Normal had $free_normal free 2 MiB blocks), delivered $before/$before2, after compact_memory $after/$after2; Normal managed $m0 -> $m1 -> $m3 pages; $out"
