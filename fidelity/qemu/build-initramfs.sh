#!/bin/bash
# Build the fidelity initramfs into the cache dir: /init, busybox, the static fragmenter and the
# guest kernel's modules for the virtio data disk (virtio-pci, virtio-blk, ext4). Rebuilds only
# when an input is newer than the archive. Needs setup.sh to have run.
# Usage: build-initramfs.sh [--cache DIR]      prints the archive's path
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${MAPCONTIG_QEMU_CACHE:-$here/.cache}
while [ $# -gt 0 ]; do
  case $1 in
    --cache) cache=$2; shift 2 ;;
    *) echo "build-initramfs.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
die() { echo "build-initramfs.sh: $*" >&2; exit 1; }

[ -f "$cache/kernel-release" ] || die "no guest kernel in $cache: run setup.sh first"
release=$(cat "$cache/kernel-release")
moddir=$cache/kernel/lib/modules/$release
busybox=$cache/busybox/bin/busybox
[ -d "$moddir" ] && [ -x "$busybox" ] || die "incomplete cache in $cache: run setup.sh again"
command -v cpio >/dev/null || die "cpio is missing: run setup.sh"

# One build at a time: guests started in parallel (run-batch.mjs) each call this, and an input
# edited mid-batch (fragment.c, init) must not have two of them writing the same files.
exec 9>"$cache/.build.lock"
flock 9

out=$cache/initramfs.cpio.gz
frag=$cache/fragment
if [ ! -x "$frag" ] || [ "$here/fragment.c" -nt "$frag" ]; then
  gcc -static -O2 -Wall -Wextra -o "$frag.tmp" "$here/fragment.c"
  mv "$frag.tmp" "$frag"
fi

if [ -f "$out" ] && [ "$out" -nt "$frag" ] && [ "$out" -nt "$here/init" ] && [ "$out" -nt "$busybox" ] \
   && [ "$out" -nt "$here/build-initramfs.sh" ] && [ "$out" -nt "$cache/kernel-release" ]; then
  echo "$out"; exit 0
fi

# Dependency closure of the wanted modules, read from each .ko's .modinfo "depends=" (the
# unpacked package has no modules.dep), emitted dependencies first.
declare -A path seen
while IFS= read -r ko; do
  n=${ko##*/}; path[${n%.ko}]=$ko
done < <(find "$moddir/kernel" -name '*.ko')
order=()
visit() {
  local m=$1 d
  [ -n "${seen[$m]:-}" ] && return
  seen[$m]=1
  [ -n "${path[$m]:-}" ] || die "module $m not in $moddir"
  for d in $(tr '\0' '\n' < "${path[$m]}" | sed -n 's/^depends=//p' | tr ',' ' '); do visit "$d"; done
  order+=("$m")
}
# crc32c_generic: ext4's metadata_csum asks the crypto API for crc32c at mount, and there is no
# modprobe to load it on demand.
for m in crc32c_generic virtio_pci virtio_blk ext4; do visit "$m"; done

root=$(mktemp -d "$cache/initramfs-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,mnt/data,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$frag" "$root/bin/fragment"
install -m 755 "$here/init" "$root/init"
for m in "${order[@]}"; do cp "${path[$m]}" "$root/lib/modules/$m.ko"; done
printf '%s\n' "${order[@]}" > "$root/lib/modules/load-order"
# A console for PID 1 before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --owner=0:0 | gzip -9n) > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
