#!/bin/bash
# Boot the fidelity guest once: fragment its memory in SHAPE, snapshot it, measure nr_hugepages
# before and after compact_memory, and parse the console into OUT/snapshot/ (issue 8 layout),
# OUT/result/ (result.env, dmesg, buddyinfo/vmstat/pagetypeinfo after each step) and
# OUT/result.json. Builds what is missing (setup.sh needs root and apt once).
# Usage: run-guest.sh SHAPE [--memory 1G] [--seed N] [--out DIR] [--accel auto|kvm|tcg]
#                           [--cpus N] [--hugepages N] [--timeout SECONDS] [--prepare]
#   SHAPE: anon-holes | page-cache | unmovable | mixed (see fragment.c)
#   --prepare: only build what is missing (initramfs, data disk for --memory) and exit, so that
#   guests started in parallel afterwards (run-batch.mjs) never build the same file at once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${MAPCONTIG_QEMU_CACHE:-$here/.cache}
usage() { sed -n '6,10p' "$0" >&2; exit 2; }
die() { echo "run-guest.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || usage
shape=$1; shift
case $shape in anon-holes|page-cache|unmovable|mixed) ;; *) usage ;; esac
memory=1G seed=0 out= accel=auto cpus=1 hugepages=0 timeout= prepare=
while [ $# -gt 0 ]; do
  if [ "$1" = --prepare ]; then prepare=1; shift; continue; fi
  [ $# -ge 2 ] || usage
  case $1 in
    --memory) memory=$2 ;;
    --seed) seed=$2 ;;
    --out) out=$2 ;;
    --accel) accel=$2 ;;
    --cpus) cpus=$2 ;;
    --hugepages) hugepages=$2 ;;
    --timeout) timeout=$2 ;;
    *) usage ;;
  esac
  shift 2
done
case $memory in
  *[Gg]) mem_mib=$(( ${memory%[Gg]} * 1024 )) ;;
  *[Mm]) mem_mib=${memory%[Mm]} ;;
  *) die "--memory takes e.g. 1G or 1536M" ;;
esac
[[ $seed =~ ^[0-9]+$ && $cpus =~ ^[0-9]+$ && $hugepages =~ ^[0-9]+$ ]] || die "--seed, --cpus and --hugepages take whole numbers"
# Above 3 GiB a pc guest gets the 32-bit PCI hole and a Normal zone; keep the harness to what
# it is measured on (and to what the shared host can afford).
[ "$mem_mib" -ge 256 ] && [ "$mem_mib" -le 2048 ] || die "--memory must be between 256M and 2G"
[ "$cpus" -ge 1 ] && [ "$cpus" -le 2 ] || die "--cpus must be 1 or 2"
out=${out:-$here/out/$shape-seed$seed}

if [ "$accel" = auto ]; then
  # KVM when /dev/kvm opens read-write and the CPU shows hardware virtualisation. The second
  # test matters: some sandboxes offer a /dev/kvm on a CPU without vmx/svm, where a guest never
  # gets past the kernel's decompressor (docs/fidelity-qemu.md). CI machines may have neither.
  accel=tcg
  if [ -c /dev/kvm ] && { exec 3<>/dev/kvm; } 2>/dev/null; then
    exec 3>&-
    grep -qwE 'vmx|svm' /proc/cpuinfo && accel=kvm
  fi
fi
case $accel in kvm|tcg) ;; *) die "--accel takes auto, kvm or tcg" ;; esac
# TCG boots in ~10 s and fragments at a few hundred MiB/s: generous, but a hung guest must end.
timeout=${timeout:-$([ "$accel" = kvm ] && echo 180 || echo 600)}

if [ ! -f "$cache/kernel-release" ] || ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null; then
  "$here/setup.sh" --cache "$cache" >&2
fi
release=$(cat "$cache/kernel-release")
initrd=$("$here/build-initramfs.sh" --cache "$cache")

# The data disk for the page-cache shapes: an ext4 of sparse 64 MiB files adding up to the
# guest's memory. Reading a hole still fills a page-cache page, so the guest's page cache is
# real while the image stays a few MiB on the host. Attached read-only for every shape.
disk=$cache/data-${mem_mib}M.img
# Under build-initramfs.sh's lock: two batches started at once must not both write $disk.tmp.
exec 9>"$cache/.build.lock"
flock 9
if [ ! -f "$disk" ]; then
  command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 missing (Debian: e2fsprogs)"
  src=$(mktemp -d)
  for ((i = 0; i < mem_mib / 64; i++)); do truncate -s 64M "$src/$(printf 'f%03d' "$i")"; done
  truncate -s $((mem_mib + mem_mib / 8 + 64))M "$disk.tmp"
  mkfs.ext4 -q -F -L mcdata -d "$src" "$disk.tmp"
  rm -rf "$src"
  mv "$disk.tmp" "$disk"
fi
exec 9>&-
if [ -n "$prepare" ]; then
  echo "run-guest.sh: ready: $initrd, $disk"
  exit 0
fi

# OUT is replaced, but only when it is empty or an earlier run's output.
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/console.log" ]; then
  die "$out is not empty and holds no earlier run (no console.log): refusing to replace it"
fi
rm -rf "$out"
mkdir -p "$out"
log=$out/console.log
cmdline="console=ttyS0 loglevel=1 panic=-1 mc.shape=$shape mc.seed=$seed mc.hugepages=$hugepages"
cpu=$([ "$accel" = kvm ] && echo host || echo max)

start=$(date +%s.%N)
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 \
  -accel "$accel" -cpu "$cpu" -smp "$cpus" -m "$memory" \
  -nographic -no-reboot -nodefaults -serial stdio -monitor none \
  -kernel "$cache/kernel/boot/vmlinuz-$release" -initrd "$initrd" -append "$cmdline" \
  -drive "file=$disk,format=raw,if=virtio,readonly=on" \
  </dev/null >"$log" 2>"$out/qemu.stderr"
rc=$?
set -e
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')

if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  die "guest timed out after ${timeout}s ($shape, $accel); last console lines:
$(tail -n 5 "$log")"
fi
[ $rc -eq 0 ] || die "qemu exited with $rc ($accel): $(tail -n 3 "$out/qemu.stderr")"

# parse-console's one-line reason goes into our own message, with the guest kernel's panic line
# when there is one (an unmovable guest can run out of memory while nr_hugepages fills the pool).
perr=$out/parse.stderr
if ! node "$here/parse-console.mjs" "$log" "$out" \
  "{\"memory_mib\":$mem_mib,\"cpus\":$cpus,\"accel\":\"$accel\",\"qemu\":\"$(qemu-system-x86_64 --version | awk 'NR==1 {print $4}')\",\"wall_s\":$wall}" \
  2>"$perr"; then
  reason=$(grep -v '^[[:space:]]*$' "$perr" | head -n 12 || true)
  panic=$(tr -d '\r' <"$log" | grep -o 'Kernel panic - not syncing: .*' | head -n 1 || true)
  die "$shape: console log $log is incomplete: ${reason#parse-console: }${panic:+; the guest kernel said \"$panic\"}"
fi
rm -f "$perr"
