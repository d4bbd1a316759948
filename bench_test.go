//go:build linux || darwin || freebsd

package shm

// Benchmarks. Every segment comes from testName and is unlinked when the
// benchmark ends. Compare runs with benchstat; for the comparison with C see
// go run ./bench/lifecycle.

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

var segBenchSizes = []struct {
	name string
	size int
}{
	{"64B", 64},
	{"4KiB", 4 << 10},
	{"1MiB", 1 << 20},
}

// segBenchSegment creates a segment of size bytes for a benchmark, touches
// every page so the mapping is populated, and closes it at the end.
func segBenchSegment(b *testing.B, size int) *Segment {
	b.Helper()
	s, err := Create(testName(b), size)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	clear(s.Bytes())
	return s
}

// BenchmarkLifecycle is the whole life of a segment: Create (create, size,
// reserve, publish, map), Close (unmap, close) and Unlink.
func BenchmarkLifecycle(b *testing.B) {
	for _, sz := range []struct {
		name string
		size int
	}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}} {
		b.Run(sz.name, func(b *testing.B) {
			name := testName(b)
			b.ReportAllocs()
			for b.Loop() {
				s, err := Create(name, sz.size)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				if err := Unlink(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens and maps an existing 4 KiB segment, and closes it.
func BenchmarkOpen(b *testing.B) {
	s := segBenchSegment(b, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		t, err := Open(s.Name())
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

type segBenchHeader struct {
	Seq   atomic.Uint64
	Len   uint32
	Flags uint32
	Data  [48]byte
}

// BenchmarkView takes a typed view; after the first call for a type it
// must not allocate.
func BenchmarkView(b *testing.B) {
	s := segBenchSegment(b, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		h, err := View[segBenchHeader](s, 64)
		if err != nil {
			b.Fatal(err)
		}
		h.Seq.Add(1)
	}
}

// BenchmarkSlice takes a typed slice of 256 uint64 values.
func BenchmarkSlice(b *testing.B) {
	s := segBenchSegment(b, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		v, err := Slice[uint64](s, 2048, 256)
		if err != nil {
			b.Fatal(err)
		}
		v[255]++
	}
}

// TestBenchViewAllocs checks the claim BenchmarkView reports: View and Slice
// do not allocate once the type has been checked.
func TestBenchViewAllocs(t *testing.T) {
	s, err := Create(testName(t), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	View[segBenchHeader](s, 0)
	Slice[uint64](s, 0, 8)
	if n := testing.AllocsPerRun(100, func() { View[segBenchHeader](s, 64) }); n != 0 {
		t.Errorf("View allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { Slice[uint64](s, 2048, 256) }); n != 0 {
		t.Errorf("Slice allocates %v times per call, want 0", n)
	}
}

// BenchmarkReadAt is the safe read path: bounds checks, the lock against
// Close, and the fault guard around the copy.
func BenchmarkReadAt(b *testing.B) {
	for _, sz := range segBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := segBenchSegment(b, 1<<20)
			p := make([]byte, sz.size)
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ReadAt(p, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteAt is the safe write path.
func BenchmarkWriteAt(b *testing.B) {
	for _, sz := range segBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := segBenchSegment(b, 1<<20)
			p := make([]byte, sz.size)
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.WriteAt(p, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCopyRead is the baseline for BenchmarkReadAt: a plain copy out of
// Bytes(), with no checks and no guard.
func BenchmarkCopyRead(b *testing.B) {
	for _, sz := range segBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := segBenchSegment(b, 1<<20)
			mem := s.Bytes()
			p := make([]byte, sz.size)
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				copy(p, mem)
			}
		})
	}
}

// BenchmarkCopyWrite is the baseline for BenchmarkWriteAt: a plain copy into
// Bytes().
func BenchmarkCopyWrite(b *testing.B) {
	for _, sz := range segBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := segBenchSegment(b, 1<<20)
			mem := s.Bytes()
			p := make([]byte, sz.size)
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				copy(mem, p)
			}
		})
	}
}

// BenchmarkGuardedVsCopy runs ReadAt (or WriteAt) and a plain copy of the
// same size alternately in one loop, in batches, and reports the fastest
// batch of each as ns per copy and their ratio (guarded/copy). Alternating in
// one run and keeping the fastest batch cancels most of the noise of a
// shared machine: interference only ever adds time.
func BenchmarkGuardedVsCopy(b *testing.B) {
	for _, dir := range []string{"read", "write"} {
		for _, sz := range segBenchSizes {
			b.Run(fmt.Sprintf("%s/%s", dir, sz.name), func(b *testing.B) {
				s := segBenchSegment(b, 1<<20)
				mem := s.Bytes()[:sz.size]
				p := make([]byte, sz.size)
				batch := max(1, (256<<10)/sz.size) // about 256 KiB copied per batch
				guarded := func() {
					for range batch {
						s.ReadAt(p, 0)
					}
				}
				plain := func() {
					for range batch {
						copy(p, mem)
					}
				}
				if dir == "write" {
					guarded = func() {
						for range batch {
							s.WriteAt(p, 0)
						}
					}
					plain = func() {
						for range batch {
							copy(mem, p)
						}
					}
				}
				var g, c []time.Duration
				b.SetBytes(int64(2 * batch * sz.size))
				for b.Loop() {
					t0 := time.Now()
					guarded()
					t1 := time.Now()
					plain()
					t2 := time.Now()
					g = append(g, t1.Sub(t0))
					c = append(c, t2.Sub(t1))
				}
				gmin, cmin := slices.Min(g), slices.Min(c)
				b.ReportMetric(float64(gmin.Nanoseconds())/float64(batch), "guarded-ns/copy")
				b.ReportMetric(float64(cmin.Nanoseconds())/float64(batch), "plain-ns/copy")
				b.ReportMetric(float64(gmin)/float64(cmin), "guarded/plain")
			})
		}
	}
}
