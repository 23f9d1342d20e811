package tun

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

func TestOpenLinux(t *testing.T) {
	testbed.Require(t, "root", "tun")
	for _, offload := range []bool{false, true} {
		name := fmt.Sprintf("cygtt%d-%d", os.Getpid()%100000, map[bool]int{false: 0, true: 1}[offload])
		d, err := OpenLinux(LinuxConfig{Name: name, MTU: 1380, Offload: offload})
		if err != nil {
			t.Fatal(err)
		}
		if d.Name() != name || d.MTU() != 1380 || d.Offload() != offload {
			t.Fatalf("%s %d %v", d.Name(), d.MTU(), d.Offload())
		}
		l, err := netlink.LinkByName(name)
		if err != nil || l.Attrs().Flags&(1<<0) == 0 {
			t.Fatalf("link %v, err %v", l, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := netlink.LinkByName(name); err == nil {
			t.Fatal("device still there after Close")
		}
		bufs := [][]byte{make([]byte, 100)}
		if _, err := d.Read(bufs, make([]int, 1), 0); err == nil {
			t.Fatal("read after close")
		}
	}
}
