//go:build !linux && !darwin && !freebsd

package main

import "io"

// isTerminal reports false: -watch prints one line per sample here.
func isTerminal(w io.Writer) bool { return false }
