package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerHungUp reports whether the peer of c has closed the connection, as
// opposed to having only shut down its sending side: after a read returned
// end-of-file, poll reports POLLHUP only for the former (a unix socket's
// peer sets both shutdown directions when it closes).
func peerHungUp(c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	hup := true
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			if err == nil {
				hup = fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
			}
			return
		}
	})
	return hup
}
