package shm

import (
	"sort"
	"sync"
	"unsafe"
)

// The mappings this process has made, so that a Mutex, which knows only
// its own address, can find the Segment it lies in and ask that segment's
// file about its owner's presence.
var mappings struct {
	sync.RWMutex
	list []mapping // by address
}

type mapping struct {
	base, n uintptr
	s       *Segment
}

func registerMapping(s *Segment) {
	if len(s.data) == 0 {
		return
	}
	m := mapping{uintptr(unsafe.Pointer(unsafe.SliceData(s.data))), uintptr(len(s.data)), s}
	mappings.Lock()
	defer mappings.Unlock()
	i := sort.Search(len(mappings.list), func(i int) bool { return mappings.list[i].base >= m.base })
	mappings.list = append(mappings.list, mapping{})
	copy(mappings.list[i+1:], mappings.list[i:])
	mappings.list[i] = m
}

// unregisterMapping removes s; it runs under s.mu's write lock, before
// the unmap.
func unregisterMapping(s *Segment) {
	mappings.Lock()
	defer mappings.Unlock()
	for i, x := range mappings.list {
		if x.s == s {
			mappings.list = append(mappings.list[:i], mappings.list[i+1:]...)
			return
		}
	}
}

// segmentAt returns the open Segment whose mapping holds the n bytes at p,
// or nil.
func segmentAt(p unsafe.Pointer, n uintptr) *Segment {
	a := uintptr(p)
	mappings.RLock()
	defer mappings.RUnlock()
	l := mappings.list
	i := sort.Search(len(l), func(i int) bool { return l[i].base > a })
	if i == 0 {
		return nil
	}
	m := l[i-1]
	if a-m.base+n > m.n {
		return nil
	}
	return m.s
}
