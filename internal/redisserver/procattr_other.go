//go:build !linux

package redisserver

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; Stop/Kill (and
// t.Cleanup in tests) are what end the server there.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
