package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExchange builds and runs the example as a user would, and checks its
// transcript and that it removed its segment.
func TestExchange(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "exchange")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("exchange: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"created /exchange-", `request "please add these up"`, "sum 87", "removed /exchange-"} {
		if !strings.Contains(text, want) {
			t.Errorf("transcript lacks %q:\n%s", want, text)
		}
	}
	name := strings.Fields(text[strings.Index(text, "removed ")+len("removed "):])[0]
	if _, err := os.Stat("/dev/shm" + name); !os.IsNotExist(err) {
		t.Errorf("example left %s behind (stat: %v)", name, err)
		os.Remove("/dev/shm" + name)
	}
}
