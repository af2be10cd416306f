#!/usr/bin/env bash
# What the real-QEMU end-to-end tests (tests/e2e) need, installed once and safe to run again:
#   * QEMU 10 and libvirt 11 from bookworm-backports (Debian 12's QEMU 7.2 corrupts
#     guests that write memory while they migrate);
#   * a Debian kernel, busybox and a static memory dirtier packed into an initramfs,
#     built under .cache/e2e/ (git-ignored): a tiny guest that boots in seconds.
# Called by tools/test.sh. Needs root and apt for the install; without them it says what
# is missing and the e2e tests fail with the same message.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${SLM_E2E_DIR:-$ROOT/.cache/e2e}
SOURCE=/etc/apt/sources.list.d/slm-bookworm-backports.sources
PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
          libvirt-dev)

log() { printf '[e2e-setup] %s\n' "$*" >&2; }
die() { printf '[e2e-setup] ERROR: %s\n' "$*" >&2; exit 1; }
mkdir -p "$OUT"
APTLOG="$OUT/apt.log"
apt_q() {  # apt-get, its chatter kept in .cache/e2e/apt.log and shown when it fails
    DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 "$@" >>"$APTLOG" 2>&1 \
        || { tail -n 30 "$APTLOG" >&2; return 1; }
}

qemu_major() {
    local v
    v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
    echo "${v:-0}"
}
libvirtd_major() {
    local v
    v=$(libvirtd --version 2>/dev/null | sed -n 's/.* \([0-9]*\)\.[0-9]*\.[0-9]*$/\1/p' | head -1)
    echo "${v:-0}"
}

# -- QEMU and libvirt from backports -------------------------------------------------------
if [ "$(qemu_major)" -lt 10 ] || [ "$(libvirtd_major)" -lt 11 ]; then
    if ! { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; then
        die "QEMU >= 10 and libvirt >= 11 are needed (bookworm-backports): run tools/e2e-setup.sh as root"
    fi
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # the same archive as the machine's main Debian source
        uri=$(sed -n 's/^URIs: *\(.*debian\/*\)$/\1/p' /etc/apt/sources.list.d/debian.sources \
              2>/dev/null | head -1)
        [ -n "$uri" ] || uri=$(sed -n 's/^deb \(http[^ ]*debian\/*\) bookworm .*/\1/p' \
                               /etc/apt/sources.list 2>/dev/null | head -1)
        [ -n "$uri" ] || die "cannot find the Debian archive URI of this machine's apt sources"
        log "adding bookworm-backports ($SOURCE)"
        cat > "$SOURCE" <<EOF
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    log "installing QEMU and libvirt from bookworm-backports (about a minute)"
    apt_q update
    # the tests run their own daemons: no package may start a system libvirtd
    guard=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    apt_q install -y -t bookworm-backports --no-install-recommends "${PACKAGES[@]}" \
        || { [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
             die "apt-get install -t bookworm-backports ${PACKAGES[*]} failed"; }
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
    [ "$(qemu_major)" -ge 10 ] || die "QEMU from backports is $(qemu_major).x, 10 or newer needed"
    [ "$(libvirtd_major)" -ge 11 ] || die "libvirtd from backports is too old"
fi

# -- the guest: kernel, busybox, dirtier, initramfs ----------------------------------------
mkdir -p "$OUT/debs"
fetch_deb() {  # fetch_deb PACKAGE DIR: unpack PACKAGE's files into DIR (once)
    local pkg=$1 dir=$2 debs
    [ -e "$dir/.unpacked" ] && return 0
    ( cd "$OUT/debs" && { ls "${pkg}"_*.deb >/dev/null 2>&1 || apt_q download "$pkg" \
        || { apt_q update && apt_q download "$pkg"; }; } ) \
        || die "apt-get download $pkg failed"
    rm -rf "$dir" && mkdir -p "$dir"
    debs=("$OUT"/debs/"${pkg}"_*.deb)  # sorted like ls; the first one
    [ -e "${debs[0]}" ] || die "no ${pkg}_*.deb in $OUT/debs"
    dpkg-deb -x "${debs[0]}" "$dir"
    touch "$dir/.unpacked"
}

if [ ! -e "$OUT/kernel/.unpacked" ]; then
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
    [ -n "$kpkg" ] || { apt_q update; kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1); }
    [ -n "$kpkg" ] || die "cannot tell which kernel package linux-image-amd64 depends on"
    log "unpacking kernel $kpkg"
    fetch_deb "$kpkg" "$OUT/kernel"
    rm -rf "$OUT/kernel/lib" "$OUT/kernel/usr" "$OUT"/debs/linux-image-*.deb  # only vmlinuz is used
fi
kernels=("$OUT"/kernel/boot/vmlinuz-*)  # sorted like ls; the first one
[ -e "${kernels[0]}" ] || die "no vmlinuz-* in $OUT/kernel/boot"
ln -sf "${kernels[0]}" "$OUT/vmlinuz"

fetch_deb busybox-static "$OUT/busybox"
BUSYBOX="$OUT/busybox/bin/busybox"
[ -x "$BUSYBOX" ] || die "busybox-static has no bin/busybox"

command -v gcc >/dev/null || die "gcc is needed to build the guest's memory dirtier"
SRC="$ROOT/tests/e2e/guest/dirtier.c"
INIT="$ROOT/tests/e2e/guest/init"
stamp=$(cat "$SRC" "$INIT" "$BUSYBOX" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$OUT/initrd.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -e "$OUT/initrd.gz" ]; then
    log "building the guest initramfs"
    gcc -O2 -static -Wall -o "$OUT/dirtier" "$SRC" || die "gcc -static failed (is libc6-dev installed?)"
    rm -rf "$OUT/rootfs" && mkdir -p "$OUT/rootfs"/{bin,sbin,proc,sys,dev,tmp}
    cp "$BUSYBOX" "$OUT/rootfs/bin/busybox"
    cp "$OUT/dirtier" "$OUT/rootfs/bin/dirtier"
    cp "$INIT" "$OUT/rootfs/init"
    chmod 755 "$OUT/rootfs/init" "$OUT/rootfs/bin/"*
    for applet in sh mount cat echo sleep; do ln -s busybox "$OUT/rootfs/bin/$applet"; done
    ( cd "$OUT/rootfs" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -9 > "$OUT/initrd.gz.tmp" )
    mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"
    echo "$stamp" > "$OUT/initrd.stamp"
fi
log "ready: QEMU $(qemu_major), libvirtd $(libvirtd_major), guest in $OUT"
