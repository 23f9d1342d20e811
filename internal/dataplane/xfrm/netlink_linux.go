package xfrm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// requestTimeout bounds one netlink request: the kernel answers XFRM requests
// at once, so a missing answer means a lost socket, not a slow kernel.
const requestTimeout = 10 * time.Second

// conn is a NETLINK_XFRM socket for requests: one in flight at a time, each
// answered by its replies and an acknowledgement.
type conn struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// inNetns runs fn on an OS thread switched into the network namespace at
// path ("" runs it in the caller's namespace). Sockets keep the namespace
// they were created in, so only their creation needs the switch. If the
// thread cannot be switched back it is left locked, and the Go runtime
// retires it when the goroutine ends.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("xfrm: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("xfrm: network namespace: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("xfrm: entering network namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("xfrm: leaving network namespace %s: %w", path, err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// openSocket opens a NETLINK_XFRM socket in the namespace at netns,
// subscribed to the multicast groups in groups (a bit mask of 1<<(group-1)).
func openSocket(netns string, groups uint32, nonblock bool) (int, error) {
	fd := -1
	err := inNetns(netns, func() error {
		typ := unix.SOCK_RAW | unix.SOCK_CLOEXEC
		if nonblock {
			typ |= unix.SOCK_NONBLOCK
		}
		s, err := unix.Socket(unix.AF_NETLINK, typ, unix.NETLINK_XFRM)
		if err != nil {
			if errors.Is(err, unix.EPROTONOSUPPORT) {
				return fmt.Errorf("xfrm: NETLINK_XFRM not supported by this kernel (module xfrm_user): %w", err)
			}
			return fmt.Errorf("xfrm: netlink socket: %w", err)
		}
		if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
			unix.Close(s)
			return fmt.Errorf("xfrm: binding the netlink socket: %w", err)
		}
		fd = s
		return nil
	})
	return fd, err
}

func openConn(netns string) (*conn, error) {
	fd, err := openSocket(netns, 0, false)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(requestTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xfrm: %w", err)
	}
	// Dumps of many states need room; the kernel's default is small.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return &conn{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// kernelError is a negative acknowledgement: the kernel's errno for a
// request. errors.Is matches the errno (unix.ESRCH, unix.EEXIST, ...).
type kernelError struct {
	op    string
	errno syscall.Errno
}

func (e *kernelError) Error() string { return "xfrm: " + e.op + ": " + e.errno.Error() }
func (e *kernelError) Unwrap() error { return e.errno }

// do sends m and passes each reply (not the acknowledgement) to fn. Dumps
// (NLM_F_DUMP) end with NLMSG_DONE, other requests with the acknowledgement
// that NLM_F_ACK asks for. op names the request in errors.
func (c *conn) do(op string, m *message, fn func(nlmsg) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return fmt.Errorf("xfrm: %s: socket closed", op)
	}
	c.seq++
	seq := c.seq
	b := m.bytes(seq)
	dump := ne.Uint16(b[6:])&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	if err != nil {
		return fmt.Errorf("xfrm: %s: send: %w", op, err)
	}
	var ferr error
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("xfrm: %s: no answer from the kernel in %v", op, requestTimeout)
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("xfrm: %s: receive: %w", op, err)
		}
		msgs, err := parseNetlink(c.buf[:n])
		if err != nil {
			return fmt.Errorf("xfrm: %s: %w", op, err)
		}
		for _, r := range msgs {
			if r.seq != seq {
				continue // the late answer of an abandoned request
			}
			switch r.typ {
			case unix.NLMSG_ERROR:
				if len(r.data) < 4 {
					return fmt.Errorf("xfrm: %s: %w", op, errShort)
				}
				if errno := -int32(ne.Uint32(r.data)); errno != 0 {
					return &kernelError{op: op, errno: syscall.Errno(errno)}
				}
				if !dump {
					return ferr
				}
			case unix.NLMSG_DONE:
				if len(r.data) >= 4 {
					if errno := -int32(ne.Uint32(r.data)); errno != 0 {
						return &kernelError{op: op, errno: syscall.Errno(errno)}
					}
				}
				return ferr
			case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
			default:
				if fn != nil && ferr == nil {
					ferr = fn(r)
				}
			}
		}
	}
}

// monitor is a non-blocking NETLINK_XFRM socket subscribed to the ACQUIRE
// and EXPIRE groups, read through Go's poller so that Close wakes it.
type monitor struct {
	f  *os.File
	rc syscall.RawConn
}

func openMonitor(netns string) (*monitor, error) {
	fd, err := openSocket(netns, 1<<(groupAcquire-1)|1<<(groupExpire-1), true)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	f := os.NewFile(uintptr(fd), "netlink-xfrm-events")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xfrm: %w", err)
	}
	return &monitor{f: f, rc: rc}, nil
}

// read receives one datagram into buf. It returns os.ErrClosed once the
// monitor is closed, and unix.ENOBUFS when the kernel dropped events because
// the socket's buffer was full.
func (m *monitor) read(buf []byte) (int, uint32, error) {
	var (
		n    int
		from uint32
		rerr error
	)
	err := m.rc.Read(func(fd uintptr) bool {
		var sa unix.Sockaddr
		n, sa, rerr = unix.Recvfrom(int(fd), buf, 0)
		if errors.Is(rerr, unix.EAGAIN) {
			return false
		}
		if nl, ok := sa.(*unix.SockaddrNetlink); ok {
			from = nl.Pid
		}
		return true
	})
	if err != nil {
		return 0, 0, err
	}
	return n, from, rerr
}

func (m *monitor) close() error { return m.f.Close() }

// writeSysctl writes value to a /proc/sys file inside the namespace at netns.
func writeSysctl(netns, name, value string) error {
	return inNetns(netns, func() error {
		return os.WriteFile("/proc/sys/"+name, []byte(value), 0)
	})
}
