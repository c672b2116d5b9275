//go:build !linux

package e2e

import (
	"os"
	"syscall"
	"testing"
)

func openPTY(t *testing.T) (master, slave *os.File) {
	t.Skip("pseudo-terminal tests run on Linux only")
	return nil, nil
}

func sessionAttr(bool) *syscall.SysProcAttr { return nil }
