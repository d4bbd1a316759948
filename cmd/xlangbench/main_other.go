//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "xlangbench: unsupported on %s: it runs on Linux only\n", runtime.GOOS)
	os.Exit(2)
}
