package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPyring runs the example against the Python package when SHM_PYTHON
// names a python with it (and numpy) installed.
func TestPyring(t *testing.T) {
	python := os.Getenv("SHM_PYTHON")
	if python == "" {
		t.Skip("SHM_PYTHON not set")
	}
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skip("numpy not installed for", python)
	}
	out, err := exec.Command("go", "run", ".", python).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok: 1000 float64s") {
		t.Fatalf("go run .: %v\n%s", err, out)
	}
}
