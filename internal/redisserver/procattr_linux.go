//go:build linux

package redisserver

import "syscall"

// sysProcAttr makes the kernel SIGKILL redis-server when its parent dies,
// so a crashed or killed test run leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
