//go:build !linux

package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"

	"github.com/mindmeld-go/shm"
)

// errNoListing is returned by scanSegments where segments cannot be listed.
var errNoListing = errors.New("this system keeps no list of shared memory segments")

type segDir struct {
	entries     []*entry
	uninspected []procInfo
}

func (d *segDir) mayBeHidden(e *entry) []procInfo { return nil }

// scanSegments cannot work here: macOS keeps its segments in a kernel table
// with no interface to list it (xnu bsd/kern/posix_shm.c), and FreeBSD's
// kern.ipc.posix_shm_list sysctl is not read yet.
func scanSegments() (*segDir, error) {
	if runtime.GOOS == "darwin" {
		return nil, fmt.Errorf("%w: macOS has no way to list shared memory segments, so ls and gc cannot work; stat, dump, create and rm do", errNoListing)
	}
	return nil, fmt.Errorf("%w on %s yet: ls and gc work on Linux only; stat, dump, create and rm work here", errNoListing, runtime.GOOS)
}

// statSegment opens the segment read-only to describe it: there is no
// directory to stat. Which processes use it is not known here.
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
