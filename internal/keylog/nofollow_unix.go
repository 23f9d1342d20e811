//go:build unix

package keylog

import "syscall"

const oNoFollow = syscall.O_NOFOLLOW
