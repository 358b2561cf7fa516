#!/bin/bash
# Prepare the QEMU fidelity harness on Debian 12, as root. Idempotent: each step is skipped when
# its result is already there.
#   - qemu-system-x86 (and cpio, to pack the initramfs; gcc, libc6-dev and e2fsprogs where
#     missing) installed on the host;
#   - the current linux-image-amd64 kernel package and busybox-static fetched with `apt-get
#     download` and unpacked with `dpkg-deb -x` into the cache dir. Nothing goes into the host's
#     /boot or /lib/modules: the guest kernel is only ever booted by QEMU.
# Usage: setup.sh [--cache DIR]     (default: fidelity/qemu/.cache, or $MAPCONTIG_QEMU_CACHE)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${MAPCONTIG_QEMU_CACHE:-$here/.cache}
while [ $# -gt 0 ]; do
  case $1 in
    --cache) cache=$2; shift 2 ;;
    *) echo "setup.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

die() { echo "setup.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
command -v apt-get >/dev/null || die "needs Debian's apt-get"

export DEBIAN_FRONTEND=noninteractive
apt_updated=
apt_update_once() { [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }; }

# Host tools. `dpkg-query` rather than `command -v` so a half-removed package is reinstalled.
need=()
for pkg in qemu-system-x86 cpio; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The static fragmenter needs gcc and glibc's libc.a (libc6-dev); the data disk needs mkfs.ext4.
# A fresh Debian 12 (a CI machine, a container) may have none of them.
need=()
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

mkdir -p "$cache/debs"
[ -f "$cache/.gitignore" ] || printf '# re-made by setup.sh, never committed\n*\n' > "$cache/.gitignore"

# The metapackage names the current ABI's image package (linux-image-6.1.0-NN-amd64 on bookworm).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
  apt_update_once
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 to a kernel image package"

fetch() { # fetch PKG: download the candidate .deb into $cache/debs unless it is there
  local pkg=$1 ver file
  ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || { apt_update_once; ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}'); }
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no candidate version for $pkg"
  # A .deb's own Version field, not its file name (apt spells an epoch "1%3a" there).
  for file in "$cache/debs/${pkg}_"*.deb; do
    [ -f "$file" ] && [ "$(dpkg-deb -f "$file" Version)" = "$ver" ] && { echo "$file"; return; }
  done
  # _apt cannot write into a root-owned work tree; downloading as root is what we want here.
  (cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) \
    || die "apt-get download $pkg=$ver failed"
  for file in "$cache/debs/${pkg}_"*.deb; do
    [ "$(dpkg-deb -f "$file" Version)" = "$ver" ] && { echo "$file"; return; }
  done
  die "apt-get download $pkg=$ver left no matching .deb"
}

kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)

unpack() { # unpack DEB DIR, once per .deb (a stamp names the .deb it came from)
  local deb=$1 dir=$2
  if [ "$(cat "$dir/.from" 2>/dev/null)" != "$(basename "$deb")" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir"
    basename "$deb" > "$dir/.from"
  fi
}
unpack "$kdeb" "$cache/kernel"
unpack "$bdeb" "$cache/busybox"

vmlinuz=$(ls "$cache"/kernel/boot/vmlinuz-* | head -n1)
[ -f "$vmlinuz" ] || die "no vmlinuz in $kdeb"
release=${vmlinuz##*/vmlinuz-}
[ -d "$cache/kernel/lib/modules/$release" ] || die "no modules for $release in $kdeb"
[ -x "$cache/busybox/bin/busybox" ] || die "no bin/busybox in $bdeb"
# Rewritten only when it changes: build-initramfs.sh rebuilds when this file is newer than the
# archive, and a rebuild while guests run in parallel (run-batch.mjs) must not be triggered.
[ "$(cat "$cache/kernel-release" 2>/dev/null)" = "$release" ] || echo "$release" > "$cache/kernel-release"
echo "setup.sh: qemu $(qemu-system-x86_64 --version | head -n1 | awk '{print $4}'), guest kernel $release, busybox $(basename "$bdeb")"
