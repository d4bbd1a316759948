package shm

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

func TestParseStat(t *testing.T) {
	fields := "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"
	for _, tc := range []struct {
		in   string
		want uint64
		err  error
	}{
		{"12 (sleep) " + fields, 424242, nil},
		{"12 (a b) c) (d) " + fields, 424242, nil},
		{"12 ()) " + fields, 424242, nil},
		{"12 (x) Z 1 2", 0, os.ErrProcessDone},
		{"12 (x) X" + fields[1:], 0, os.ErrProcessDone},
		{"12 (x) S 1 2", 0, errors.New("malformed")},
		{"garbage", 0, errors.New("malformed")},
		{"", 0, errors.New("malformed")},
	} {
		got, err := parseStat([]byte(tc.in), 12)
		if tc.err == os.ErrProcessDone {
			if !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("parseStat(%q) = %d, %v; want os.ErrProcessDone", tc.in, got, err)
			}
			continue
		}
		if (err != nil) != (tc.err != nil) || got != tc.want {
			t.Errorf("parseStat(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestProcessStart(t *testing.T) {
	a, err := ProcessStart(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("ProcessStart(self) = %d, %v", a, err)
	}
	if b, _ := ProcessStart(os.Getpid()); b != a {
		t.Fatalf("ProcessStart(self) changed: %d then %d", a, b)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := ProcessStart(cmd.Process.Pid); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("ProcessStart(reaped child) = %v, want os.ErrProcessDone", err)
	}
	if _, err := ProcessStart(0); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("ProcessStart(0) = %v, want os.ErrProcessDone", err)
	}
}
