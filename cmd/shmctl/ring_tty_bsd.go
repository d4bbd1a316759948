//go:build darwin || freebsd

package main

import "golang.org/x/sys/unix"

// tcgets is the ioctl that reads a terminal's settings.
const tcgets = unix.TIOCGETA
