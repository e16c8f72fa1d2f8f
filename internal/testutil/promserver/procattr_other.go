//go:build !linux

package promserver

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
