#!/usr/bin/env bash
# Builds (or finds in the cache) the kernel and base initramfs of Cygnet's test VM and
# prints where they are, as shell assignments:
#
#   CYGNET_VM_KERNEL=/root/.cache/cygnet-vm/kernel-6.1.0-56-cloud-amd64_6.1.192-2/vmlinuz
#   CYGNET_VM_INITRD=/root/.cache/cygnet-vm/initramfs-<hash>.cpio
#
# The kernel is Debian's, resolved through the metapackage linux-image-$FLAVOUR (never a
# pinned ABI number), fetched with `apt-get download` and unpacked with dpkg-deb (it is
# not installed as the host's kernel). The initramfs holds busybox-static, Debian's
# iproute2 `ip` with its shared libraries, the kernel modules ESP needs (with their
# dependencies, resolved by modprobe against the unpacked tree) and vm/init.
# go-test-exec appends the test binary to it per run.
#
# Environment:
#   CYGNET_VM_CACHE    cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/cygnet-vm)
#   CYGNET_VM_FLAVOUR  Debian kernel flavour: cloud-amd64 (default, 27 MB) or amd64
#                      (70 MB; it has 9p and virtio, which CYGNET_VM_HOSTROOT=1 needs to
#                      share the host's root into the VM: vm/go-test-exec)
#   CYGNET_VM_REFRESH  1: ask apt again even if a kernel for this flavour is cached
#
# Needs: apt-get (Debian's package lists: run `apt-get update` once), dpkg-deb, depmod
# and modprobe (kmod), cpio, busybox-static, iproute2. vm/README.md has the apt line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
flavour=${CYGNET_VM_FLAVOUR:-cloud-amd64}
cache=${CYGNET_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cygnet-vm}
mkdir -p "$cache"

die() { echo "vm/build-initramfs.sh: $*" >&2; exit 1; }
log() { echo "vm/build-initramfs.sh: $*" >&2; }

for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio ldd sha256sum; do
	command -v "$tool" >/dev/null || die "missing $tool (apt-get install kmod cpio dpkg libc-bin)"
done
[ -x /bin/busybox ] || die "missing /bin/busybox (apt-get install busybox-static)"
ipbin=$(readlink -f "$(command -v ip || true)")
[ -x "$ipbin" ] || die "missing ip (apt-get install iproute2)"

# One builder at a time per cache: parallel `go test` invocations share it.
exec 9>"$cache/lock"
flock 9

# --- the kernel -------------------------------------------------------------------------

# The metapackage's Depends names the current ABI package (linux-image-6.1.0-NN-FLAVOUR).
resolve() {
	local meta=linux-image-$flavour dep ver
	dep=$(apt-cache depends "$meta" 2>/dev/null | sed -n "s/^ *Depends: \(linux-image-[0-9][^ ]*-$flavour\)\$/\1/p" | head -n1)
	[ -n "$dep" ] || return 1
	ver=$(apt-cache show --no-all-versions "$dep" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
	[ -n "$ver" ] || return 1
	echo "${dep#linux-image-}_$ver"
}

kdir=""
if [ "${CYGNET_VM_REFRESH:-0}" != 1 ] && [ -f "$cache/current-$flavour" ]; then
	kdir=$(cat "$cache/current-$flavour")
	[ -f "$kdir/vmlinuz" ] || kdir=""
fi
if [ -z "$kdir" ] || [ "${CYGNET_VM_REFRESH:-0}" = 1 ]; then
	if id=$(resolve); then
		kdir=$cache/kernel-$id
	elif [ -n "$kdir" ]; then
		log "apt cannot resolve linux-image-$flavour; using the cached $(basename "$kdir")"
	else
		die "apt cannot resolve linux-image-$flavour (run apt-get update) and nothing is cached in $cache"
	fi
fi

if [ ! -f "$kdir/vmlinuz" ]; then
	id=${kdir##*/kernel-}
	pkg=linux-image-${id%%_*}
	ver=${id#*_}
	tmp=$(mktemp -d "$cache/.download.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	log "downloading $pkg=$ver"
	# apt drops privileges to _apt for downloads: give it a directory it may write.
	chmod 0777 "$tmp"
	sandbox=(); [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
	(cd "$tmp" && apt-get download -q "${sandbox[@]}" "$pkg=$ver" >&2) || die "apt-get download $pkg=$ver failed"
	deb=$(ls "$tmp"/*.deb)
	mkdir -p "$tmp/root"
	dpkg-deb -x "$deb" "$tmp/root"
	kver=$(ls "$tmp/root/lib/modules")
	[ -n "$kver" ] && [ -f "$tmp/root/boot/vmlinuz-$kver" ] || die "$deb has no vmlinuz or modules"
	# The .deb ships no modules.dep: build it for the unpacked tree.
	depmod -b "$tmp/root" "$kver"
	mkdir -p "$tmp/k"
	mv "$tmp/root/boot/vmlinuz-$kver" "$tmp/k/vmlinuz"
	mv "$tmp/root/boot/config-$kver" "$tmp/k/config"
	mv "$tmp/root/lib" "$tmp/k/lib"
	echo "$kver" >"$tmp/k/release"
	rm -rf "$kdir"
	mv "$tmp/k" "$kdir"
	rm -rf "$tmp"
	trap - EXIT
fi
echo "$kdir" >"$cache/current-$flavour"
kver=$(cat "$kdir/release")

# --- the initramfs ----------------------------------------------------------------------

# Modules to load at boot, in this order; the kernel's request_module is not relied on.
# ESP and its netlink interface, XFRM interfaces, the AEAD and cipher/hash modules that the
# kernel's algorithm names (rfc4106(gcm(aes)), rfc7539esp(chacha20,poly1305), cbc(aes),
# hmac(sha1|sha256|sha384|sha512), authencesn for ESN) instantiate, veth and tun.
# seqiv, echainiv and authenc take "ecb(cipher_null)" (crypto_null, ecb) and the default
# RNG "stdrng" (drbg, jitterentropy_rng) at instantiation.
modules="xfrm_user esp4 esp6 xfrm_interface veth tun
	aesni_intel gcm ghash_generic ghash_clmulni_intel ctr ecb crypto_null
	drbg jitterentropy_rng seqiv echainiv authenc authencesn
	chacha20poly1305 chacha_generic chacha_x86_64 poly1305_generic poly1305_x86_64
	sha1_ssse3 sha256_ssse3 sha512_generic sha512_ssse3 cbc hmac"
if grep -q '^CONFIG_NET_9P_VIRTIO=m' "$kdir/config"; then
	modules="$modules 9p 9pnet_virtio virtio_pci"
fi

insmods=$(for m in $modules; do
	modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>/dev/null || die "no module $m in $kver"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }')

key=$( {
	echo "$kver $flavour"
	cat "$here/init" "$0"
	sha256sum /bin/busybox "$ipbin"
	echo "$insmods"
} | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$key.cpio
if [ ! -f "$initrd" ]; then
	log "building $initrd"
	tmp=$(mktemp -d "$cache/.initramfs.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	r=$tmp/root
	# /host and /usr: mount points for the host's root (9p) and its /usr (vm/init).
	mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,var,host,usr,lib/modules/"$kver",cygnet}
	ln -s ../run "$r/var/run"
	cp /bin/busybox "$r/bin/busybox"
	for applet in $(/bin/busybox --list); do
		case $applet in busybox | ip) continue ;; esac
		ln -s busybox "$r/bin/$applet"
	done
	ln -s ../bin/busybox "$r/sbin/modprobe"
	# Debian's ip: busybox's has no xfrm or netns.
	cp "$ipbin" "$r/bin/ip"
	ln -s ../bin/ip "$r/sbin/ip"
	ldd "$ipbin" | awk '/=>/ { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r lib; do
		[ -f "$lib" ] || continue
		mkdir -p "$r$(dirname "$lib")"
		cp -L "$lib" "$r$lib"
	done
	if [ ! -e "$r/lib64" ] && [ -d /lib64 ]; then
		mkdir -p "$r/lib64"
		cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
	fi
	: >"$r/etc/modules.boot"
	for path in $insmods; do
		rel=${path#"$kdir"/lib/modules/"$kver"/}
		mkdir -p "$r/lib/modules/$kver/$(dirname "$rel")"
		cp "$path" "$r/lib/modules/$kver/$rel"
		echo "/lib/modules/$kver/$rel" >>"$r/etc/modules.boot"
	done
	cp "$kdir"/lib/modules/"$kver"/modules.{order,builtin,builtin.modinfo} "$r/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$r" "$kver"
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
	echo "root:x:0:" >"$r/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$r/etc/hosts"
	install -m 0755 "$here/init" "$r/init"
	(cd "$r" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) >"$tmp/initramfs.cpio"
	mv "$tmp/initramfs.cpio" "$initrd"
	rm -rf "$tmp"
	trap - EXIT
	# Older images of this flavour are dead weight.
	find "$cache" -maxdepth 1 -name 'initramfs-*.cpio' ! -name "${initrd##*/}" -mtime +7 -delete 2>/dev/null || true
fi

echo "CYGNET_VM_KERNEL=$kdir/vmlinuz"
echo "CYGNET_VM_INITRD=$initrd"
echo "CYGNET_VM_KERNEL_RELEASE=$kver"
