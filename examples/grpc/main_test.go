package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExample builds and runs the example as a user would.
func TestExample(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "grpc-example")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("example: %v\n%s", err, out)
	}
	for _, want := range []string{`= "HELLO OVER SHARED MEMORY"`, "over shm", `got "echo: three"`, "stopped"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
}
