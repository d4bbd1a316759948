package main

// Listing on FreeBSD. This file uses unsafe to pass a C string to the
// shm_open2 system call, as the shm package's shm_freebsd.go does: the
// segment is opened read-only without being mapped, which the package's
// Open would do.
//
// Segments live in a kernel dictionary, not in a file system; the
// kern.ipc.posix_shm_list sysctl lists them (sys/kern/uipc_shm.c,
// sysctl_posix_shm_list; usr.bin/posixshmcontrol/posixshmcontrol.c reads it
// for "posixshmcontrol ls"), parsed by parseShmList in kinfo.go. It gives
// a segment's name, mode and size and nothing of its users: its records'
// kf_ref_count is never filled in.
//
// What can be told of use comes from fstat of a descriptor opened
// read-only: shm_stat reports as st_nlink the reference count of the
// segment's VM object, which holds one reference of its own and one per
// mapping (shm_mmap calls vm_object_reference; munmap and exit drop it).
// Our descriptor adds none, so st_nlink - 1 is the number of mappings. A
// descriptor held open without a mapping adds nothing there (it holds the
// shmfd, not the object), and the only way to see one would be to read
// every process's descriptor table; so gc takes a segment with no mapping
// for one that may still be held open, and keeps it unless told
// -ignore-uninspected. The shm package takes no presence lock here (FreeBSD
// has no OFD locks), so nothing is seen across jails either.

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mindmeld-go/shm"
)

type segDir struct {
	entries     []*entry
	uninspected []procInfo        // always empty: FreeBSD names no process
	ino         map[*entry]uint64 // st_ino of each segment, unique per object
}

func (d *segDir) mayBeHidden(e *entry) []procInfo { return nil }

func (d *segDir) unseen() string {
	return "descriptors FreeBSD does not show (it counts a segment's mappings, not the descriptors open on it)"
}

func scanSegments() (*segDir, error) {
	var b []byte
	var err error
	// The list can grow between the two sysctl calls SysctlRaw makes (one
	// for the size, one for the data); it then fails with ENOMEM.
	for range 5 {
		if b, err = unix.SysctlRaw("kern.ipc.posix_shm_list"); err != unix.ENOMEM {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sysctl kern.ipc.posix_shm_list: %w", err)
	}
	recs, err := parseShmList(b)
	if err != nil {
		return nil, err
	}
	d := &segDir{ino: map[*entry]uint64{}}
	for _, r := range recs {
		e := &entry{
			Name: r.path[1:],
			Type: "segment",
			Size: int64(r.size),
			Mode: fmt.Sprintf("%04o", r.mode&0o7777),
			UID:  -1,
		}
		ino, err := e.describe()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		d.entries = append(d.entries, e)
		if err == nil {
			d.ino[e] = ino
		}
	}
	return d, nil
}

// statSegment describes the segment name (without its leading slash).
func statSegment(name string) (*entry, error) {
	cname := "/" + name
	if _, err := shm.Exists(cname); err != nil {
		return nil, err // an invalid name
	}
	e := &entry{Name: name, Type: "segment", UID: -1}
	if _, err := e.describe(); err != nil {
		return nil, err
	}
	return e, nil
}

// describe opens e's segment read-only, without mapping it, and fills in
// what fstat and its first bytes say: owner, times, mode, size, kind and
// the number of mappings. It returns the segment's inode number. An error
// other than fs.ErrNotExist is recorded in e.KindError too, and leaves
// e.Mappings nil, so that gc keeps the segment.
func (e *entry) describe() (uint64, error) {
	fd, err := shmOpenReadOnly("/" + e.Name)
	if err != nil {
		err = &fs.PathError{Op: "shm_open", Path: "/" + e.Name, Err: err}
		e.setKind(nil, err)
		return 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		err = &fs.PathError{Op: "fstat", Path: "/" + e.Name, Err: err}
		e.setKind(nil, err)
		return 0, err
	}
	e.Size = st.Size
	e.Mode = fmt.Sprintf("%04o", st.Mode&0o7777)
	e.UID = int64(st.Uid)
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		e.Owner = u.Username
	}
	e.ModTime = time.Unix(st.Mtim.Unix())
	e.changed = e.ModTime
	if ct := time.Unix(st.Ctim.Unix()); ct.After(e.changed) {
		e.changed = ct
	}
	maps := int64(st.Nlink) - 1
	if maps < 0 {
		maps = 0
	}
	e.Mappings = &maps
	e.setKind(readHead(fd, e.Name))
	return st.Ino, nil
}

// readHead reads the first headSize bytes of the segment (fewer if it is
// smaller) with pread, which shm_read supports.
func readHead(fd int, name string) ([]byte, error) {
	head := make([]byte, headSize)
	n := 0
	for n < len(head) {
		m, err := unix.Pread(fd, head[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "pread", Path: "/" + name, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return head[:n], nil
}

// shmOpenReadOnly opens the existing segment name ("/x") read-only with
// shm_open2(path, O_RDONLY|O_CLOEXEC, 0, 0, NULL) (sys/kern/syscalls.master,
// 571; FreeBSD 13 and later), falling back to the old shm_open (482) on
// ENOSYS, as the shm package does.
func shmOpenReadOnly(name string) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	const sysShmOpen2 = 571
	for {
		r, _, e := unix.Syscall6(sysShmOpen2, uintptr(unsafe.Pointer(p)), uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0, 0)
		if e == unix.ENOSYS {
			r, _, e = unix.Syscall(unix.SYS_SHM_OPEN, uintptr(unsafe.Pointer(p)), uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0)
		}
		runtime.KeepAlive(p)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// removeIfSame removes e's name if it still names the same segment and that
// segment is still unmapped.
func (d *segDir) removeIfSame(e *entry) error {
	ino, ok := d.ino[e]
	if !ok {
		return errors.New("it could not be inspected")
	}
	again := &entry{Name: e.Name}
	ino2, err := again.describe()
	if err != nil {
		return err
	}
	if ino2 != ino {
		return errors.New("the name was replaced since it was checked")
	}
	if *again.Mappings > 0 {
		return fmt.Errorf("%w: it was mapped", errNowInUse)
	}
	return shm.Unlink(e.Name)
}
