//go:build unix && !linux

package runtimeapi

import "syscall"

// sysProcAttr: the bootstrap leads a process group of its own (a timeout
// kills the group).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
