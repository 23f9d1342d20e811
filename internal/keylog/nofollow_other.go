//go:build !unix

package keylog

const oNoFollow = 0
