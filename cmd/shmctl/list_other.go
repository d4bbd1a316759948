//go:build !linux && !freebsd

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"

	"github.com/mindmeld-go/shm"
)

type segDir struct {
	entries     []*entry
	uninspected []procInfo
}

func (d *segDir) mayBeHidden(e *entry) []procInfo { return nil }

func (d *segDir) unseen() string { return "processes it cannot see" }

// scanSegments cannot work here: macOS keeps its segments in a kernel table
// with no interface to list it (xnu bsd/kern/posix_shm.c), and other
// systems have no POSIX shared memory the shm package supports.
func scanSegments() (*segDir, error) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return nil, errors.New("macOS keeps no list of POSIX shared memory segments; give names to stat/rm")
	}
	return nil, fmt.Errorf("shared memory segments cannot be listed on %s", runtime.GOOS)
}

// statSegment opens the segment read-only to describe it: there is no
// directory to stat. Which processes use it is not known here. Its kind is
// read through the read-only mapping with Segment.ReadAt, which turns a
// segment shrunk meanwhile into an error, not a fault.
func statSegment(name string) (*entry, error) {
	s, err := shm.OpenFile(name, os.O_RDONLY, 0, 0)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	fi, err := s.Stat()
	if err != nil {
		return nil, err
	}
	e := &entry{
		Name:    s.Name()[1:],
		Type:    "segment",
		Size:    fi.Size(),
		Mode:    fmt.Sprintf("%04o", fi.Mode().Perm()),
		UID:     -1,
		ModTime: fi.ModTime(),
	}
	head := make([]byte, min(headSize, s.Size()))
	n, err := s.ReadAt(head, 0)
	if err == io.EOF {
		err = nil
	}
	e.setKind(head[:n], err)
	// Sys is a *unix.Stat_t; its Uid field is read by reflection to keep
	// this file free of per-system types.
	if v := reflect.ValueOf(fi.Sys()); v.Kind() == reflect.Pointer && !v.IsNil() {
		if u := v.Elem().FieldByName("Uid"); u.IsValid() && u.CanUint() {
			e.UID = int64(u.Uint())
		}
	}
	return e, nil
}

func (d *segDir) removeIfSame(e *entry) error { return errors.ErrUnsupported }
