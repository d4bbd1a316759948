package main

// The reply of FreeBSD's kern.ipc.posix_shm_list sysctl, parsed here so that
// the parser builds, and is tested, on every system (list_freebsd.go calls
// it).
//
// The reply is a run of struct kinfo_file records (sys/sys/user.h), one per
// named segment, each cut short after its path: sysctl_posix_shm_list
// (sys/kern/uipc_shm.c) fills one with shm_fill_kinfo_locked, which sets
// kf_type = KF_TYPE_SHM, kf_un.kf_file.kf_file_mode = S_IFREG | mode,
// kf_un.kf_file.kf_file_size and kf_path, then pack_kinfo
// (sys/kern/kern_descrip.c) sets kf_structsize to offsetof(kf_path) +
// strlen(kf_path) + 1 rounded up to 8. Nothing else of the record is
// filled in (the kernel does not even zero it), so kf_ref_count,
// kf_file_nlink and the rest must not be read: the sysctl says nothing of
// who uses a segment. usr.bin/posixshmcontrol/posixshmcontrol.c walks the
// reply the same way, stopping at a kf_structsize of 0.
//
// struct kinfo_file is the same on every architecture (its size, 1392, is
// fixed by KINFO_FILE_SIZE: "This size should never be changed"); the
// fields used, at their offsets:
//
//	0    int      kf_structsize
//	4    int      kf_type              KF_TYPE_SHM = 8
//	8    int      kf_fd, kf_ref_count, kf_flags, kf_pad0
//	24   int64    kf_offset
//	32   union    kf_un (304 bytes); kf_un.kf_file is
//	              int kf_file_type, int kf_spareint[3], uint64 kf_spareint64[29],
//	     +248     uint64 kf_file_nlink, kf_file_fsid, kf_file_rdev, kf_file_fileid,
//	312  +280     uint64 kf_file_size
//	     +288     uint32 kf_file_fsid_freebsd11, kf_file_rdev_freebsd11,
//	328  +296     uint16 kf_file_mode
//	336  uint16   kf_status, kf_pad1; int _kf_ispare0; cap_rights_t (16); uint64
//	368  char     kf_path[PATH_MAX]    (jail-relative when listed from a jail)
//
// Words are in the host's byte order.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	kinfoFileSize   = 1392 // KINFO_FILE_SIZE
	kfTypeSHM       = 8    // KF_TYPE_SHM
	kfOffType       = 4
	kfOffFileSize   = 312
	kfOffFileMode   = 328
	kfOffPath       = 368
	kfMinRecordSize = kfOffPath + 1 // an empty path and its NUL
)

// kinfoShm is what one record of kern.ipc.posix_shm_list says of a segment.
type kinfoShm struct {
	path string // "/x"
	mode uint16 // S_IFREG | permission bits
	size uint64
}

// errBadShmList is wrapped by every error of parseShmList.
var errBadShmList = errors.New("kern.ipc.posix_shm_list: unexpected reply")

// parseShmList parses the reply of the kern.ipc.posix_shm_list sysctl. It
// stops at the end of b or at a record whose size is 0, and returns an error
// wrapping errBadShmList, with what it parsed before, for a record that is
// cut short, too small or too large, of another type, or whose path is not
// NUL-terminated or does not start with "/".
func parseShmList(b []byte) ([]kinfoShm, error) {
	ne := binary.NativeEndian
	var out []kinfoShm
	for off := 0; off < len(b); {
		rest := b[off:]
		if len(rest) < 4 {
			return out, fmt.Errorf("%w: %d stray bytes at offset %d", errBadShmList, len(rest), off)
		}
		size := int(int32(ne.Uint32(rest)))
		if size == 0 {
			break
		}
		if size < kfMinRecordSize || size > kinfoFileSize {
			return out, fmt.Errorf("%w: record at offset %d has size %d, want %d to %d", errBadShmList, off, size, kfMinRecordSize, kinfoFileSize)
		}
		if size > len(rest) {
			return out, fmt.Errorf("%w: record at offset %d of size %d is cut short at %d bytes", errBadShmList, off, size, len(rest))
		}
		rec := rest[:size]
		if t := int32(ne.Uint32(rec[kfOffType:])); t != kfTypeSHM {
			return out, fmt.Errorf("%w: record at offset %d has type %d, want KF_TYPE_SHM (%d)", errBadShmList, off, t, kfTypeSHM)
		}
		p := rec[kfOffPath:]
		n := bytes.IndexByte(p, 0)
		if n < 0 {
			return out, fmt.Errorf("%w: record at offset %d has a path without its NUL", errBadShmList, off)
		}
		if n == 0 || p[0] != '/' {
			return out, fmt.Errorf("%w: record at offset %d has path %q, want one starting with /", errBadShmList, off, p[:n])
		}
		out = append(out, kinfoShm{
			path: string(p[:n]),
			mode: ne.Uint16(rec[kfOffFileMode:]),
			size: ne.Uint64(rec[kfOffFileSize:]),
		})
		off += size
	}
	return out, nil
}
