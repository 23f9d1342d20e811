#!/usr/bin/env bash
# Runs the tests that need a kernel with ESP (internal/dataplane/xfrm) in Cygnet's QEMU
# test VM, where a kernel without ESP is a failure (the wrapper sets CYGNET_REQUIRE_ESP=1).
# .ci/run calls it after ./scripts/test; developers can run it as it is.
#
# As root it first installs what the VM needs (Debian packages; apt-get update only if
# the package lists lack them or the kernel metapackage). Without root, the packages must
# be there already. Extra arguments go to `go test` (e.g. -run TestPing -v).
#
# Environment: PACKAGES (default ./internal/dataplane/xfrm/), GO_TEST_FLAGS (default
# "-race -count=1 -timeout 30m"), and those of vm/go-test-exec and vm/build-initramfs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="qemu-system-x86 busybox-static kmod cpio iproute2"
flavour=${CYGNET_VM_FLAVOUR:-cloud-amd64}
if [ "$(id -u)" = 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	missing=$(dpkg-query -W -f='${Status} ${Package}\n' $pkgs 2>&1 | grep -v '^install ok installed' || true)
	if [ -n "$missing" ] || ! apt-cache show "linux-image-$flavour" >/dev/null 2>&1; then
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
# Build (or find) the kernel and initramfs once, outside the timed test.
./vm/build-initramfs.sh >/dev/null
# shellcheck disable=SC2086
go test ${GO_TEST_FLAGS:--race -count=1 -timeout 30m} -exec "$PWD/vm/go-test-exec" "$@" ${PACKAGES:-./internal/dataplane/xfrm/}
echo "vm/run-xfrm-tests.sh: VM tests finished in $(($(date +%s) - start))s"
