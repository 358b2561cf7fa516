#!/usr/bin/env bash
# hugetlb-real.sh — writes to /proc/sys/vm/nr_hugepages on the REAL kernel of this machine, from
# fragmentation states made with bench/c/fragment.c, for docs/fidelity.md ("nr_hugepages on the
# real kernel and in the model"; compare with scripts/fidelity/hugetlb-model.ts).
#
# For each run and each fragmentation pattern K (runs outer, so that zone Normal's lazy growth,
# which never shrinks, is spread evenly over the patterns):
#   1. settle: wait SETTLE_S seconds (the per-cpu lists drain; no compaction: see the doc);
#   2. record "start";
#   3. start bench/c/fragment.c: a MIB-sized anonymous mapping (THP off) touched page by page,
#      then all but 1 page of every K dropped with MADV_DONTNEED; record "before";
#   4. B = free 2 MiB units in zone Normal (order-9 + 2 x order-10 blocks, /proc/buddyinfo of
#      "before"): what the kernel can serve before it must grow the zone (deferred_init=lazy) or
#      compact. Request N = min(NMAX, B + EXTRA): more than those blocks, bounded;
#   5. write N to /proc/sys/vm/nr_hugepages (timed with $EPOCHREALTIME); record "pool1";
#   6. write 1 to /proc/sys/vm/compact_memory (timed); record "compacted" at once and
#      "compacted30" WAIT_S seconds later (the emptied blocks' last pages sit on pcp lists);
#   7. write N again (timed); record "pool2";
#   8. write the original value back (timed); record "released"; stop fragment.
# A capture holds /proc/buddyinfo, an excerpt of /proc/zoneinfo (sizes, watermarks, free pages,
# pcp count and high per CPU, every zone), the MemTotal/MemFree/HugePages lines of /proc/meminfo,
# the three nr_hugepages files (global sysctl, sysfs, node0), the htlb_*, compact_*, pgmigrate_*,
# thp_fault_alloc, pgscan/pgsteal and free-page counters of /proc/vmstat, and for "before",
# "pool1" and "pool2" per-section counts of hugetlb and buddy pages over zone Normal's
# initialised part (scripts/fidelity/hugetlb-kpf.c reading /proc/kpageflags).
# Captures go to $OUT/r<run>-K<K>/<stage>.txt (~3 KB each); fragment's output to fragment.jsonl;
# one line per write to $OUT/writes.tsv.
#
# Needs root. Bounded: one mapping of at most 4096 MiB, at most NMAX huge pages (6 GiB by
# default). ALWAYS restores nr_hugepages to its value at start (trap on exit, also on error or
# ^C) and kills fragment. Changes no other sysctl (compact_memory is a write-only trigger). Note:
# under deferred_init=lazy, memory the kernel initialises to serve a request stays initialised
# (zone Normal's managed pages only grow): each run grows Normal by about EXTRA 2 MiB pages.
# Never run by CI (it measures this machine's kernel).
#
# Usage: scripts/fidelity/hugetlb-real.sh            (defaults below)
#        MIB=4096 PATTERNS="1 2 64 512" RUNS=3 EXTRA=160 NMAX=3072 WAIT_S=30 SETTLE_S=30 \
#          OUT=docs/fidelity-data/hugetlb/real scripts/fidelity/hugetlb-real.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
MIB=${MIB:-4096}
PATTERNS=${PATTERNS:-"1 2 64 512"}
RUNS=${RUNS:-3}
EXTRA=${EXTRA:-160}
NMAX=${NMAX:-3072}
WAIT_S=${WAIT_S:-30}
SETTLE_S=${SETTLE_S:-30}
OUT=${OUT:-docs/fidelity-data/hugetlb/real}
BIN=${BIN:-/tmp/mapcontig-fragment}
KPF=${KPF:-/tmp/mapcontig-hugetlb-kpf}
NRHP=/proc/sys/vm/nr_hugepages
SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB
NODE0=/sys/devices/system/node/node0/hugepages/hugepages-2048kB
NORMAL_START=$((0x100000))
SECTION=32768

[ "$(id -u)" = 0 ] || { echo "hugetlb-real.sh: must run as root" >&2; exit 1; }
[ "$MIB" -le 4096 ] || { echo "hugetlb-real.sh: MIB must be <= 4096" >&2; exit 1; }
[ "$NMAX" -le 3584 ] || { echo "hugetlb-real.sh: NMAX must be <= 3584 (7 GiB)" >&2; exit 1; }
mkdir -p "$OUT" "$(dirname "$BIN")" "$(dirname "$KPF")"
gcc -O2 -Wall -o "$BIN" bench/c/fragment.c
gcc -O2 -Wall -o "$KPF" scripts/fidelity/hugetlb-kpf.c

orig=$(cat "$NRHP")
frag_pid=
cleanup() {
  local rc=$?
  if [ -n "$frag_pid" ] && kill -0 "$frag_pid" 2>/dev/null; then kill "$frag_pid" 2>/dev/null || true; fi
  echo "$orig" >"$NRHP" 2>/dev/null || true
  local now
  now=$(cat "$NRHP")
  if [ "$now" != "$orig" ]; then
    echo "hugetlb-real.sh: WARNING: nr_hugepages is $now, not $orig; retrying" >&2
    sleep 1
    echo "$orig" >"$NRHP" || true
  fi
  echo "hugetlb-real.sh: nr_hugepages restored to $(cat "$NRHP") (was $orig at start)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

normal_managed() { awk '/^Node/ {z=$4} z=="Normal" && $1=="managed" {print $2}' /proc/zoneinfo; }

# kpageflags over Normal's initialised part only (never the uninitialised struct pages above it).
kpf() {
  local m end
  m=$(normal_managed)
  end=$((NORMAL_START + m / SECTION * SECTION))
  "$KPF" "$NORMAL_START" "$end"
}

# One snapshot of the files we compare, in a small text file. hugetlb-model.ts builds the same
# text from the model's files and parses both with one parser.
capture() { # capture FILE [kpf]
  {
    echo "# buddyinfo"
    cat /proc/buddyinfo
    echo "# zoneinfo"
    awk '/^Node/ {zone=$4}
         /^ +(pages free|min|low|high|spanned|present|managed) / && !/high_/ {print zone, $0}
         /nr_free_pages / {print zone, $0}
         /cpu:/ {cpu=$2}
         /^ +count:/ {print zone, "pcp cpu" cpu, $0}
         /^ +high:/ {print zone, "pcp cpu" cpu, $0}' /proc/zoneinfo
    echo "# meminfo"
    grep -E "^(MemTotal|MemFree|HugePages_|Hugetlb)" /proc/meminfo
    echo "# hugepages"
    echo "sysctl $(cat "$NRHP")"
    echo "sysfs $(cat "$SYSFS/nr_hugepages") free $(cat "$SYSFS/free_hugepages") surplus $(cat "$SYSFS/surplus_hugepages")"
    echo "node0 $(cat "$NODE0/nr_hugepages")"
    echo "# vmstat"
    grep -E "^((nr_free_pages|nr_free_pages_blocks|nr_anon_pages|nr_inactive_file|nr_active_file|thp_fault_alloc) |htlb_|compact_|pgmigrate_|pgscan_|pgsteal_)" /proc/vmstat
    if [ "${2:-}" = kpf ]; then
      echo "# kpf"
      kpf
    fi
  } >"$1"
}

# Free 2 MiB units (order-9 + 2 x order-10 blocks) of zone Normal in a capture.
normal_units() { awk '$4 == "Normal" {print $14 + 2 * $15; exit}' "$1"; }

# Timed write of VALUE to PATH; one line in writes.tsv.
timed_write() { # timed_write RUN K WHAT PATH VALUE
  local t0 t1
  t0=$EPOCHREALTIME
  echo "$5" >"$4"
  t1=$EPOCHREALTIME
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$5" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) * 1000}')" >>"$OUT/writes.tsv"
}

printf 'run\tK\twhat\tvalue\tt_ms\n' >"$OUT/writes.tsv"
{
  echo "# machine"
  uname -r
  grep -o 'deferred_init=[a-z]*' /proc/cmdline || echo "deferred_init=(not set)"
  echo "nr_hugepages at start: $orig"
  echo "hugetlb_optimize_vmemmap: $(cat /proc/sys/vm/hugetlb_optimize_vmemmap 2>/dev/null || echo n/a)"
  echo "thp enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
  echo "MIB=$MIB PATTERNS=\"$PATTERNS\" RUNS=$RUNS EXTRA=$EXTRA NMAX=$NMAX WAIT_S=$WAIT_S SETTLE_S=$SETTLE_S"
  date -u
} >"$OUT/machine.txt"

for run in $(seq 1 "$RUNS"); do
  for K in $PATTERNS; do
    dir="$OUT/r$run-K$K"
    mkdir -p "$dir"
    echo "== run $run K=$K ($MIB MiB, keep 1 of $K)" >&2
    sleep "$SETTLE_S"
    capture "$dir/start.txt"

    coproc FRAG { exec "$BIN" "$MIB" "$K"; }
    frag_pid=$FRAG_PID
    read -r touched <&"${FRAG[0]}"
    read -r ready <&"${FRAG[0]}"
    echo "$touched" >"$dir/fragment.jsonl"
    echo "$ready" >>"$dir/fragment.jsonl"
    capture "$dir/before.txt" kpf

    B=$(normal_units "$dir/before.txt")
    N=$((B + EXTRA))
    [ "$N" -le "$NMAX" ] || N=$NMAX
    echo "   Normal has $B free 2 MiB units; requesting $N" >&2

    timed_write "$run" "$K" nr_hugepages "$NRHP" "$N"
    capture "$dir/pool1.txt" kpf
    timed_write "$run" "$K" compact_memory /proc/sys/vm/compact_memory 1
    capture "$dir/compacted.txt"
    sleep "$WAIT_S"
    capture "$dir/compacted$WAIT_S.txt"
    timed_write "$run" "$K" nr_hugepages_again "$NRHP" "$N"
    capture "$dir/pool2.txt" kpf
    timed_write "$run" "$K" release "$NRHP" "$orig"
    capture "$dir/released.txt"

    echo map >&"${FRAG[1]}"
    read -r map <&"${FRAG[0]}"
    echo "$map" >>"$dir/fragment.jsonl"
    echo exit >&"${FRAG[1]}"
    wait "$frag_pid" || true
    frag_pid=
    echo "   delivered $(awk '$1 == "sysctl" {print $2}' "$dir/pool1.txt") then" \
      "$(awk '$1 == "sysctl" {print $2}' "$dir/pool2.txt") of $N;" \
      "Normal managed $(awk '$1 == "Normal" && $2 == "managed" {print $3}' "$dir/before.txt") ->" \
      "$(awk '$1 == "Normal" && $2 == "managed" {print $3}' "$dir/pool1.txt")" >&2
  done
done
echo "captures in $OUT; writes in $OUT/writes.tsv" >&2
