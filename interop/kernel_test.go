package interop

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/testbed"
)

// The VM's part of the matrix: the transport-mode cases, which need
// strongSwan with the kernel's ESP (env.go). One test, in two places:
//
//   - on the host it makes the certificates and the cygnet binary in a
//     directory it shares with the VM, boots Cygnet's test VM once with this
//     very test binary (vm/go-test-exec, the host's root shared in for
//     strongSwan), and afterwards dissects the capture the VM left in the
//     shared directory with tshark, on the host (in the VM, under software
//     emulation, tshark takes 10-40 s just to start), and checks the matrix;
//   - in the VM the same test runs the cases (the suite of interop_test.go,
//     with charon's kernel-netlink) and leaves its results, the capture and
//     Cygnet's key log in the shared directory.

const (
	// vmOptIn, set to 1 on the host, runs the VM's part (it boots a VM: not
	// in the parallel `go test ./...`; vm/run-xfrm-tests.sh sets it).
	vmOptIn = "CYGNET_INTEROP_VM"
	// vmShareEnv names the shared directory, on the host and in the VM
	// alike (vm/go-test-exec mounts it at the same path).
	vmShareEnv = "CYGNET_INTEROP_SHARE"
	// vmTestTimeout bounds the run in the VM; go-test-exec adds a minute
	// for boot and power off.
	vmTestTimeout = 8 * time.Minute
)

// Files in the shared directory.
const (
	vmResultsFile = "run.json"         // the VM's Run, without the wire step
	vmCaptureFile = "capture.pcapng"   // every frame on Cygnet's veth
	vmKeylogDir   = "xdg"              // tshark's configuration home: Cygnet's key log in xdg/wireshark
	vmPKIDir      = "pki"              // the certificates, made on the host
	vmBinary      = "cygnet"           // the cygnet binary, built on the host
	vmLogFile     = "go-test-exec.log" // the VM's output, on the host
)

// TestStrongSwanMatrixKernel runs the cases of the interop matrix that need
// strongSwan with the kernel's ESP — transport mode, which kernel-libipsec
// does not implement — in Cygnet's QEMU test VM against charon with
// kernel-netlink, with Cygnet's userspace data plane. On the host it runs
// only with CYGNET_INTEROP_VM=1 (vm/run-xfrm-tests.sh sets it; it needs
// root, QEMU, strongSwan, pki and tshark) and skips otherwise, also under
// CYGNET_STRICT=1, as the other tests that need the VM do. With -update it
// records the run and rewrites docs/interop.md.
func TestStrongSwanMatrixKernel(t *testing.T) {
	if testbed.InVM() {
		runMatrixInVM(t)
		return
	}
	if os.Getenv(vmOptIn) != "1" {
		t.Skipf("the transport-mode cases run in Cygnet's test VM: vm/run-xfrm-tests.sh, or %s=1 go test -run MatrixKernel ./interop/ (root, QEMU)", vmOptIn)
	}
	testbed.Require(t, "root", "charon", "swanctl", "pki", "tshark", "ping")
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("%s=1 but no QEMU (apt-get install qemu-system-x86 busybox-static kmod cpio): %v", vmOptIn, err)
	}
	start := time.Now()
	plans := plansIn(VMEnv)
	share := t.TempDir()
	if _, _, err := makeCerts(mkdir(t, share, vmPKIDir), plans); err != nil {
		t.Fatal(err)
	}
	bin := cygnetBinary(t, share)
	if filepath.Dir(bin) != share {
		// CYGNET_INTEROP_BIN: the VM sees the shared directory, not
		// necessarily that path.
		copyFile(t, bin, filepath.Join(share, vmBinary))
	}
	mkdir(t, share, vmKeylogDir)
	prepared := time.Since(start)

	vmStart := time.Now()
	vmErr := runInVM(t, share)
	vmTime := time.Since(vmStart)

	run, err := readRun(filepath.Join(share, vmResultsFile))
	if err != nil {
		t.Fatalf("the VM left no results (%v); the VM run: %v", err, vmErr)
	}
	if vmErr != nil {
		// Its failures are in its output, logged above; the matrix
		// below says which steps they were.
		t.Errorf("the VM run failed: %v", vmErr)
	}
	if len(run.Results) != len(plans) {
		t.Fatalf("the VM ran %d cases, want %d", len(run.Results), len(plans))
	}
	checkWire(t, filepath.Join(share, vmCaptureFile), filepath.Join(share, vmKeylogDir), plans, run.Results)
	run.Total, run.VMTime = time.Since(start), vmTime
	t.Logf("interop matrix, VM (certificates and binary %v, VM %v: setup %v, cases %v; total %v; data plane %s, Cygnet rekeys by %s):\n%s",
		prepared.Round(time.Millisecond), vmTime.Round(time.Millisecond), run.Setup.Round(time.Millisecond), run.Cases.Round(time.Millisecond),
		run.Total.Round(time.Millisecond), run.Dataplane, run.CygnetRekey, Text(run.Results))
	checkResults(t, run.Results)
	if *update {
		updateDoc(t, run)
	}
}

// runInVM boots the VM with this test binary, which runs
// TestStrongSwanMatrixKernel there with share mounted at the same path, and
// logs its output as it comes. It returns the run's error (a failed test
// in the VM is an exit status 1).
func runInVM(t *testing.T, share string) error {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), vmTestTimeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../vm/go-test-exec", exe,
		"-test.run=^TestStrongSwanMatrixKernel$", "-test.v", "-test.count=1", "-test.timeout="+vmTestTimeout.String())
	cmd.Env = append(os.Environ(),
		"CYGNET_VM_HOSTROOT=1",   // strongSwan, ping, iproute2 from the host
		"CYGNET_VM_SHARE="+share, // read-write, at the same path
		vmShareEnv+"="+share,     // passed into the VM (CYGNET_*)
		"CYGNET_INTEROP_BIN="+filepath.Join(share, vmBinary),
	)
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	log, err := os.Create(filepath.Join(share, vmLogFile))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
			t.Logf("vm| %s", sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	err = cmd.Run()
	pw.Close()
	wg.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = errors.Join(err, ctx.Err())
	}
	return err
}

// runMatrixInVM is the test's part in the VM: the VM's cases against
// charon with kernel-netlink; results, capture and key log go to the
// shared directory for the host's part.
func runMatrixInVM(t *testing.T) {
	testbed.RequireKernelESP(t)
	testbed.Require(t, "root", "charon", "swanctl", "ping", "tun")
	share := os.Getenv(vmShareEnv)
	if share == "" {
		t.Fatalf("%s is not set: this part is started by the same test on the host (%s=1 go test -run MatrixKernel ./interop/)", vmShareEnv, vmOptIn)
	}
	start := time.Now()
	// The binary runs from the VM's memory: executed from the share, every
	// page it touches would be a 9p round trip.
	bin := filepath.Join(t.TempDir(), vmBinary)
	copyFile(t, filepath.Join(share, vmBinary), bin)
	t.Setenv("CYGNET_INTEROP_BIN", bin)
	t.Logf("cygnet binary copied from the shared directory in %v", time.Since(start).Round(time.Millisecond))
	plans := plansIn(VMEnv)
	s := newSuite(t, plans, suiteOptions{env: VMEnv, certDir: filepath.Join(share, vmPKIDir), xdg: filepath.Join(share, vmKeylogDir)})
	setupTime := time.Since(start)
	results := s.runCases(t, plans)
	casesTime := time.Since(start) - setupTime

	s.capture.Path = filepath.Join(share, vmCaptureFile)
	s.capture.Stop(t)
	t.Logf("the VM's cases (setup %v, cases %v; the wire step follows on the host):\n%s",
		setupTime.Round(time.Millisecond), casesTime.Round(time.Millisecond), Text(results))
	run := Run{Env: VMEnv, Results: results, Setup: setupTime, Cases: casesTime,
		Dataplane: s.dataplane, Parallel: defaultParallel, CygnetRekey: s.cygnetRekey()}
	if err := writeRun(filepath.Join(share, vmResultsFile), run); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	dir := filepath.Join(parts...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
