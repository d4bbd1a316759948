package ring

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeSnippet returns the fenced code block that follows marker in the
// README.
func readmeSnippet(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README.md has no %q", marker)
	}
	s = s[i+len(marker):]
	start := strings.Index(s, "```")
	if start < 0 {
		t.Fatalf("no code block after %q", marker)
	}
	s = s[start:]
	s = s[strings.Index(s, "\n")+1:]
	end := strings.Index(s, "\n```")
	if end < 0 {
		t.Fatalf("unterminated code block after %q", marker)
	}
	return s[:end+1]
}

// TestQuickStartSnippets runs the README's quick-start snippets as they
// stand: a ring made here, the C snippet (built from c/shm.h with the
// issue's flags) sending three messages from its own process, and the
// Python snippet receiving them in another (with SHM_PYTHON set; without
// it, this process receives them).
func TestQuickStartSnippets(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	b, _ := os.ReadFile("../README.md")
	if !strings.Contains(string(b), `r, err := ring.Create("/quickstart", 1<<16, &ring.Options{MaxMessage: 1024})`) {
		t.Fatal("README's quick-start Go line changed: update this test")
	}
	r, err := Create(testName(t), 1<<16, &Options{MaxMessage: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dir := t.TempDir()
	src := filepath.Join(dir, "send.c")
	csrc := strings.ReplaceAll(readmeSnippet(t, "<!-- quickstart-c -->"), `"/quickstart"`, `"`+r.Name()+`"`)
	if err := os.WriteFile(src, []byte(csrc), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "send")
	if out, err := exec.Command(gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-I", "../c", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc the README's C snippet: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin).CombinedOutput(); err != nil {
		t.Fatalf("the C snippet: %v\n%s", err, out)
	}
	want := "hello 0 from C\nhello 1 from C\nhello 2 from C\n"
	python := os.Getenv("SHM_PYTHON")
	if python == "" {
		c, err := r.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var got strings.Builder
		buf := make([]byte, 64)
		for {
			n, err := c.TryReceive(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Write(buf[:n])
			got.WriteByte('\n')
		}
		if got.String() != want {
			t.Fatalf("received %q, want %q", got.String(), want)
		}
		t.Skip("SHM_PYTHON not set: the C snippet ran; the Python snippet did not")
	}
	pysrc := strings.ReplaceAll(readmeSnippet(t, "<!-- quickstart-python -->"), `"/quickstart"`, `"`+r.Name()+`"`)
	out, err := exec.Command(python, "-c", pysrc).CombinedOutput()
	if err != nil {
		t.Fatalf("the Python snippet: %v\n%s", err, out)
	}
	if string(out) != want {
		t.Fatalf("the Python snippet printed %q, want %q", out, want)
	}
}
