package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestShmecho builds and runs the example as a user would.
func TestShmecho(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("shmnet is unsupported on", runtime.GOOS)
	}
	bin := filepath.Join(t.TempDir(), "shmecho")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("shmecho: %v\n%s", err, out)
	}
	for _, want := range []string{"listening on", `got back "hello over shared memory"`, `got back "a second line"`, "connection from pid", "socket removed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
}
