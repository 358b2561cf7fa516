#!/usr/bin/env bash
# compaction-real.sh — /proc/sys/vm/compact_memory on the REAL kernel of this machine, for
# docs/fidelity.md (compare with scripts/fidelity/compaction-model.ts).
#
# For each fragmentation pattern K and each run:
#   1. settle: write 1 to compact_memory and wait SETTLE_S seconds, so that every run starts from
#      a state one compaction pass has already been over (it still moves page cache; see the doc);
#   2. start bench/c/fragment.c: a MiB-sized anonymous mapping (THP off) touched page by page,
#      then all but 1 page of every K dropped with MADV_DONTNEED;
#   3. record "before": /proc/buddyinfo, Normal's lines of /proc/pagetypeinfo, /proc/zoneinfo
#      (sizes, free pages, pcp counts per CPU), /proc/vmstat (compact_*, pgmigrate_*, free pages);
#   4. write 1 to /proc/sys/vm/compact_memory with the compaction:mm_compaction_begin/end
#      tracepoints on (each zone's scanner start and end pfns), timing the write (bash
#      $EPOCHREALTIME around it); with TRACE_MIGRATE=1 also compaction:mm_compaction_migratepages
#      and migrate:mm_migrate_pages (one line per batch of at most 32 isolated folios: how many
#      migrated, failed, and whether large folios were involved) — to see why a pass ends early;
#   5. record "after0" at once and "after30" WAIT_S seconds later (freed pages sit on the per-cpu
#      lists and reach the buddy lists only as vmstat's decay_pcp_high drains them; see
#      /work/shared/real-kernel-notes.md §2), with fragment's own view of where its kept pages
#      are (how many moved to another PFN);
#   6. stop fragment and record "exit".
# Captures go to $OUT/K<K>-r<run>/<stage>.txt (about 3 KB each) and one line per run to
# $OUT/summary.tsv.
#
# Needs root. Bounded: one mapping of at most 4096 MiB at a time. Changes no sysctl (compact_memory
# is a write-only trigger); mounts tracefs only if it is not mounted and unmounts it again, and
# turns its tracepoints off again. Never run by CI (it measures this machine's kernel).
#
# Usage: scripts/fidelity/compaction-real.sh            (defaults below)
#        MIB=2048 PATTERNS="1 2 64 512" RUNS=3 WAIT_S=30 SETTLE_S=30 TRACE_MIGRATE=0 \
#          OUT=docs/fidelity-data/compaction/real scripts/fidelity/compaction-real.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
MIB=${MIB:-2048}
PATTERNS=${PATTERNS:-"1 2 64 512"}
RUNS=${RUNS:-3}
WAIT_S=${WAIT_S:-30}
SETTLE_S=${SETTLE_S:-30}
OUT=${OUT:-docs/fidelity-data/compaction/real}
TRACE_MIGRATE=${TRACE_MIGRATE:-0}
BIN=${BIN:-/tmp/mapcontig-fragment}
TRACING=/sys/kernel/tracing

[ "$(id -u)" = 0 ] || { echo "compaction-real.sh: must run as root" >&2; exit 1; }
[ "$MIB" -le 4096 ] || { echo "compaction-real.sh: MIB must be <= 4096" >&2; exit 1; }
mkdir -p "$OUT" "$(dirname "$BIN")"
gcc -O2 -Wall -o "$BIN" bench/c/fragment.c

# Tracing: mount only if needed; remember what to undo.
mounted_tracefs=0
if [ ! -e "$TRACING/events/compaction" ]; then
  mount -t tracefs nodev "$TRACING"
  mounted_tracefs=1
fi
EVENTS="compaction/mm_compaction_begin compaction/mm_compaction_end"
if [ "$TRACE_MIGRATE" = 1 ]; then
  EVENTS="$EVENTS compaction/mm_compaction_migratepages migrate/mm_migrate_pages"
fi
trace_events() { # trace_events 0|1
  for e in $EVENTS; do echo "$1" >"$TRACING/events/$e/enable"; done
}
frag_pid=
cleanup() {
  trace_events 0 2>/dev/null || true
  if [ -n "$frag_pid" ] && kill -0 "$frag_pid" 2>/dev/null; then kill "$frag_pid" 2>/dev/null || true; fi
  if [ "$mounted_tracefs" = 1 ]; then umount "$TRACING" 2>/dev/null || true; fi
}
trap cleanup EXIT

# One snapshot of the files we compare, in a small text file.
capture() { # capture FILE
  {
    echo "# buddyinfo"
    cat /proc/buddyinfo
    echo "# pagetypeinfo Normal"
    grep -E "zone +Normal" /proc/pagetypeinfo
    echo "# zoneinfo"
    awk '/^Node/ {zone=$4}
         /^ +(pages free|min|low|high|spanned|present|managed) / && !/high_/ {print zone, $0}
         /nr_free_pages / {print zone, $0}
         /cpu:/ {cpu=$2}
         /^ +count:/ {print zone, "pcp cpu" cpu, $0}
         /^ +high:/ {print zone, "pcp cpu" cpu, $0}' /proc/zoneinfo
    echo "# vmstat"
    grep -E "^(nr_free_pages|nr_free_pages_blocks|nr_anon_pages|nr_inactive_file|nr_active_file|compact_|pgmigrate_|thp_fault_alloc|pgsteal_|pgscan_kswapd)" /proc/vmstat
  } >"$1"
}

vmstat_val() { awk -v k="$1" '$1 == k {print $2}' /proc/vmstat; }
normal_order() { # normal_order ORDER -> free blocks of that order in Normal
  awk -v o="$1" '$4 == "Normal" {print $(5 + o)}' /proc/buddyinfo
}
normal_managed() { awk '/^Node/ {z=$4} z=="Normal" && $1=="managed" {print $2}' /proc/zoneinfo; }
normal_pcp() { awk '/^Node/ {z=$4} z=="Normal" && $1=="count:" {s+=$2} END {print s}' /proc/zoneinfo; }

compact() { echo 1 >/proc/sys/vm/compact_memory; }

printf 'K\trun\tstage\tt_ms\tmanaged\tnr_free\tpcp\to0\to1\to2\to3\to4\to5\to6\to7\to8\to9\to10\tmigrate_scanned\tfree_scanned\tisolated\tpgmigrate_success\tpgmigrate_fail\tkept_moved\n' >"$OUT/summary.tsv"

summary() { # summary K RUN STAGE T_MS MOVED
  local orders
  orders=$(awk '$4 == "Normal" {for (i = 5; i <= 15; i++) printf "%s\t", $i}' /proc/buddyinfo)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" \
    "$(normal_managed)" "$(awk '/^Node/ {z=$4} z=="Normal" && $1=="nr_free_pages" {print $2}' /proc/zoneinfo)" \
    "$(normal_pcp)" "$orders" "$(vmstat_val compact_migrate_scanned)" "$(vmstat_val compact_free_scanned)" \
    "$(vmstat_val compact_isolated)" "$(vmstat_val pgmigrate_success)" "$(vmstat_val pgmigrate_fail)" "$5" \
    >>"$OUT/summary.tsv"
}

for K in $PATTERNS; do
  for run in $(seq 1 "$RUNS"); do
    dir="$OUT/K$K-r$run"
    mkdir -p "$dir"
    echo "== K=$K run $run ($MIB MiB, keep 1 of $K)" >&2
    compact
    sleep "$SETTLE_S"
    capture "$dir/start.txt"
    summary "$K" "$run" start "" ""

    coproc FRAG { exec "$BIN" "$MIB" "$K"; }
    frag_pid=$FRAG_PID
    read -r touched <&"${FRAG[0]}"
    read -r ready <&"${FRAG[0]}"
    echo "$touched" >"$dir/fragment.jsonl"
    echo "$ready" >>"$dir/fragment.jsonl"
    capture "$dir/before.txt"
    summary "$K" "$run" before "" ""

    echo >"$TRACING/trace"
    trace_events 1
    t0=$EPOCHREALTIME
    compact
    t1=$EPOCHREALTIME
    trace_events 0
    capture "$dir/after0.txt"
    t_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) * 1000}')
    grep -E "mm_compaction_(begin|end)" "$TRACING/trace" | sed -E 's/^ +//' >"$dir/trace.txt" || true
    if [ "$TRACE_MIGRATE" = 1 ]; then
      # Only the batches that failed, and the last few before each zone's end (small files).
      grep -E "mm_compaction_(begin|end)|mm_migrate_pages|mm_compaction_migratepages" "$TRACING/trace" |
        sed -E 's/^ +//' | awk '/mm_compaction_end/ {for (i = n - 6; i < n; i++) if (i >= 0 && !(i in shown)) print buf[i]; print; next}
          {buf[n] = $0; if ($0 ~ /nr_failed=[1-9]/) {print; shown[n] = 1}; n++}' >"$dir/trace-migrate.txt" || true
    fi
    echo map >&"${FRAG[1]}"
    read -r map0 <&"${FRAG[0]}"
    echo "$map0" >>"$dir/fragment.jsonl"
    moved=$(sed -E 's/.*"moved":([0-9]+).*/\1/' <<<"$map0")
    summary "$K" "$run" after0 "$t_ms" "$moved"

    sleep "$WAIT_S"
    capture "$dir/after$WAIT_S.txt"
    echo map >&"${FRAG[1]}"
    read -r map1 <&"${FRAG[0]}"
    echo "$map1" >>"$dir/fragment.jsonl"
    moved=$(sed -E 's/.*"moved":([0-9]+).*/\1/' <<<"$map1")
    summary "$K" "$run" "after$WAIT_S" "" "$moved"

    echo exit >&"${FRAG[1]}"
    wait "$frag_pid" || true
    frag_pid=
    capture "$dir/exit.txt"
    echo "   compact_memory took $t_ms ms; kept pages moved: $moved" >&2
  done
done
echo "captures in $OUT; summary in $OUT/summary.tsv" >&2
