//go:build !linux

package main

import "errors"

var pidnsArgs []string

func pidnsSkip() string { return "PID namespaces (unshare) are Linux-only" }

func pidnsHolder(int) (int, error) { return 0, errors.ErrUnsupported }
