package shm

// This file holds the package's typed access to mapped memory, and with it
// most of its use of unsafe: turning an offset in the mapping into a *T or a
// []T. Every conversion here is preceded by checks that the segment is open,
// the range is in bounds, the offset is aligned for T, and T holds no Go
// pointers.

import (
	"fmt"
	"io/fs"
	"reflect"
	"strconv"
	"sync"
	"unsafe"
)

// View returns a pointer to a T stored at offset bytes into the segment.
//
// View checks that the segment is open, that the T lies within the mapping,
// that offset is a multiple of T's alignment, and that T holds no Go pointers
// (see [ErrPointers]); the error says which check failed and, for a pointer,
// which field holds it. The type is examined once per type; later calls do
// not allocate.
//
// The pointer aliases shared memory: another process may change the value at
// any time, so share fields through sync/atomic types or guard them with a
// [Mutex]. The pointer is valid only until the segment is closed.
func View[T any](s *Segment, offset int) (*T, error) {
	p, err := locate(s, reflect.TypeFor[T](), offset, 1)
	if err != nil {
		return nil, err
	}
	return (*T)(p), nil
}

// Slice returns n values of type T stored consecutively from offset bytes
// into the segment. It makes the same checks as [View], for the whole range.
// The slice has length and capacity n and is valid only until the segment is
// closed.
func Slice[T any](s *Segment, offset, n int) ([]T, error) {
	p, err := locate(s, reflect.TypeFor[T](), offset, n)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []T{}, nil
	}
	return unsafe.Slice((*T)(p), n), nil
}

// locate checks that n values of type t may be placed at offset in s, and
// returns their address.
func locate(s *Segment, t reflect.Type, offset, n int) (unsafe.Pointer, error) {
	if err := checkType(t); err != nil {
		return nil, &fs.PathError{Op: "view", Path: s.name, Err: err}
	}
	size, align := int(t.Size()), t.Align()
	s.mu.RLock()
	data := s.data
	s.mu.RUnlock()
	if data == nil {
		return nil, s.errClosed("view")
	}
	// Overflow-safe: compare against what remains rather than computing
	// offset + n*size.
	if offset < 0 || n < 0 || offset > len(data) || (size > 0 && n > (len(data)-offset)/size) {
		return nil, &fs.PathError{Op: "view", Path: s.name, Err: fmt.Errorf(
			"%w: %d × %v (%d bytes each) at offset %d do not fit in %d bytes", fs.ErrInvalid, n, t, size, offset, len(data))}
	}
	p := unsafe.Pointer(unsafe.SliceData(data))
	if offset%align != 0 || uintptr(p)%uintptr(align) != 0 {
		return nil, &fs.PathError{Op: "view", Path: s.name, Err: fmt.Errorf(
			"%w: offset %d is not a multiple of the alignment %d of %v", fs.ErrInvalid, offset, align, t)}
	}
	return unsafe.Add(p, offset), nil
}

// typeChecks caches checkType's verdict per type: reflect.Type → error (nil
// when the type is pointer-free).
var typeChecks sync.Map

// checkType returns nil if t holds no Go pointers, or an error wrapping
// ErrPointers that names the offending field.
func checkType(t reflect.Type) error {
	if v, ok := typeChecks.Load(t); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	var err error
	if path, kind, bad := findPointer(t, ""); bad {
		where := "the type itself"
		if path != "" {
			where = "field " + path
		}
		err = fmt.Errorf("%w: %v: %s is a %s", ErrPointers, t, where, kind)
	}
	if err == nil {
		typeChecks.Store(t, nil)
	} else {
		typeChecks.Store(t, err)
	}
	return err
}

// findPointer walks t and returns the path to the first component that holds
// a pointer, and that component's kind.
func findPointer(t reflect.Type, path string) (string, reflect.Kind, bool) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return "", 0, false
	case reflect.Array:
		if t.Len() == 0 {
			return "", 0, false
		}
		return findPointer(t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Name
			if name == "_" {
				name = "_#" + strconv.Itoa(i)
			}
			if path != "" {
				name = path + "." + name
			}
			if p, k, bad := findPointer(f.Type, name); bad {
				return p, k, true
			}
		}
		return "", 0, false
	default:
		// Pointer, UnsafePointer, Slice, String, Map, Chan, Func, Interface.
		return path, t.Kind(), true
	}
}
