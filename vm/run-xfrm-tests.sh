#!/usr/bin/env bash
# Runs the tests that need a kernel with ESP in Cygnet's QEMU test VM, where a kernel
# without ESP is a failure (the wrapper sets CYGNET_REQUIRE_ESP=1): the XFRM backend
# (internal/dataplane/xfrm), strongSwan with the kernel's ESP (internal/testbed),
# `cygnet daemon` with `dataplane: xfrm` (cmd/cygnet), and the transport-mode cases of
# the interop matrix against strongSwan with the kernel's ESP (interop). scripts/test
# calls it; developers can run it as it is.
#
# As root it first installs what the VM needs (Debian packages; apt-get update only if
# the package lists lack them or the kernel metapackage). Without root, the packages must
# be there already. Extra arguments go to `go test` after the script's own (so a -run
# given here replaces a package's default selection, e.g. -run TestPing -v).
#
# Each package runs in its own VM, one after the other (each VM takes both vCPUs of a
# 2-core CI machine). Only the tests of a package that need the VM run there (its
# default -run below); packages that run strongSwan get the host's root shared in
# (CYGNET_VM_HOSTROOT=1, the amd64 kernel flavour with 9p; see vm/go-test-exec).
# interop's test runs on the host instead and boots the VM itself with its own test
# binary (vm/go-test-exec): it prepares certificates before and runs tshark after, on
# the host (CYGNET_INTEROP_VM=1 lets it).
#
# Environment: PACKAGES (default below), GO_TEST_FLAGS (default
# "-race -count=1 -timeout 30m"), and those of vm/go-test-exec and vm/build-initramfs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=${PACKAGES:-./internal/dataplane/xfrm/ ./internal/testbed/ ./cmd/cygnet/ ./interop/}

# vm_run PKG: the tests of PKG that belong in the VM (a -run pattern; empty: all).
vm_run() {
	case $1 in
	./internal/testbed | ./internal/testbed/) echo '^TestCharonToCharonKernel$' ;;
	./cmd/cygnet | ./cmd/cygnet/) echo '^TestXFRM' ;;
	./interop | ./interop/) echo '^TestStrongSwanMatrixKernel$' ;;
	*) echo '' ;;
	esac
}

# vm_self PKG: 1 if PKG's test runs on the host and boots the VM itself.
vm_self() {
	case $1 in
	./interop | ./interop/) echo 1 ;;
	*) echo 0 ;;
	esac
}

# vm_hostroot PKG: 1 if PKG's VM tests run the host's strongSwan.
vm_hostroot() {
	case $1 in
	./internal/dataplane/xfrm | ./internal/dataplane/xfrm/) echo 0 ;;
	*) echo 1 ;;
	esac
}

pkgs="qemu-system-x86 busybox-static kmod cpio iproute2"
if [ "$(id -u)" = 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	missing=$(dpkg-query -W -f='${Status} ${Package}\n' $pkgs 2>&1 | grep -v '^install ok installed' || true)
	if [ -n "$missing" ] || ! apt-cache show "linux-image-${CYGNET_VM_FLAVOUR:-cloud-amd64}" linux-image-amd64 >/dev/null 2>&1; then
		apt-get update -qq
	fi
	if [ -n "$missing" ]; then
		apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
	fi
fi
for tool in qemu-system-x86_64 /bin/busybox depmod cpio ip; do
	command -v "$tool" >/dev/null || {
		echo "vm/run-xfrm-tests.sh: $tool missing; as root: apt-get install $pkgs" >&2
		exit 1
	}
done

start=$(date +%s)
# Build (or find) the kernels and initramfs images once, outside the timed tests.
./vm/build-initramfs.sh >/dev/null
for pkg in $packages; do
	if [ "$(vm_hostroot "$pkg")" = 1 ]; then
		CYGNET_VM_FLAVOUR=${CYGNET_VM_FLAVOUR:-amd64} ./vm/build-initramfs.sh >/dev/null
		break
	fi
done

rc=0
for pkg in $packages; do
	run=$(vm_run "$pkg")
	t0=$(date +%s)
	if [ "$(vm_self "$pkg")" = 1 ]; then
		# shellcheck disable=SC2086
		CYGNET_INTEROP_VM=1 go test ${GO_TEST_FLAGS:--race -count=1 -timeout 30m} \
			${run:+-run "$run"} "$@" "$pkg" || rc=1
	else
		# shellcheck disable=SC2086
		CYGNET_VM_HOSTROOT=$(vm_hostroot "$pkg") go test ${GO_TEST_FLAGS:--race -count=1 -timeout 30m} \
			-exec "$PWD/vm/go-test-exec" ${run:+-run "$run"} "$@" "$pkg" || rc=1
	fi
	echo "vm/run-xfrm-tests.sh: $pkg in $(($(date +%s) - t0))s"
done
echo "vm/run-xfrm-tests.sh: VM tests finished in $(($(date +%s) - start))s"
exit $rc
