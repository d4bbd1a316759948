package main

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// kinfoRecord builds one record as FreeBSD's pack_kinfo leaves it: cut short
// after the path's NUL, rounded up to 8.
func kinfoRecord(path string, mode uint16, size uint64) []byte {
	n := (kfOffPath + len(path) + 1 + 7) &^ 7
	rec := make([]byte, n)
	ne := binary.NativeEndian
	ne.PutUint32(rec, uint32(n))
	ne.PutUint32(rec[kfOffType:], kfTypeSHM)
	ne.PutUint64(rec[kfOffFileSize:], size)
	ne.PutUint16(rec[kfOffFileMode:], mode)
	copy(rec[kfOffPath:], path)
	return rec
}

func TestParseShmList(t *testing.T) {
	b := slices.Concat(kinfoRecord("/a", 0o100600, 4096), kinfoRecord("/longer-name-1", 0o100644, 1<<20))
	got, err := parseShmList(b)
	want := []kinfoShm{{"/a", 0o100600, 4096}, {"/longer-name-1", 0o100644, 1 << 20}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseShmList = %v, %v; want %v", got, err, want)
	}
	// A record of size 0 ends the list.
	if got, err := parseShmList(slices.Concat(kinfoRecord("/a", 0o100600, 1), make([]byte, 16))); err != nil || len(got) != 1 {
		t.Errorf("list ended by a 0 size: %v, %v", got, err)
	}
	bad := map[string][]byte{
		"cut short":  kinfoRecord("/a", 0, 0)[:kfOffPath],
		"stray":      slices.Concat(kinfoRecord("/a", 0, 0), []byte{1, 2}),
		"no slash":   kinfoRecord("a", 0, 0),
		"empty path": kinfoRecord("", 0, 0),
	}
	wrongType := kinfoRecord("/a", 0, 0)
	binary.NativeEndian.PutUint32(wrongType[kfOffType:], 1)
	bad["type"] = wrongType
	noNUL := kinfoRecord("/abcdefg", 0, 0)
	for i := kfOffPath; i < len(noNUL); i++ {
		noNUL[i] = 'x'
	}
	bad["no NUL"] = noNUL
	huge := kinfoRecord("/a", 0, 0)
	binary.NativeEndian.PutUint32(huge, kinfoFileSize+8)
	bad["too large"] = huge
	for what, b := range bad {
		if _, err := parseShmList(b); !errors.Is(err, errBadShmList) {
			t.Errorf("%s: parseShmList error %v, want errBadShmList", what, err)
		}
	}
}

// The reply comes from the kernel, but a parser of foreign bytes must never
// panic or read past them.
func FuzzParseShmList(f *testing.F) {
	f.Add(kinfoRecord("/a", 0o100600, 4096))
	f.Add(slices.Concat(kinfoRecord("/x", 1, 2), kinfoRecord("/y", 3, 4)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseShmList(b)
		if err != nil && !errors.Is(err, errBadShmList) {
			t.Fatalf("error %v does not wrap errBadShmList", err)
		}
		for _, r := range recs {
			if len(r.path) == 0 || r.path[0] != '/' {
				t.Fatalf("record with path %q", r.path)
			}
		}
	})
}
