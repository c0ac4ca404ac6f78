package runtimeapi

import "syscall"

// sysProcAttr: the bootstrap leads a process group of its own (a timeout
// kills the group), and dies with the server should the server be killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
