package ring

import "testing"

// A TryRead or TryReceive on an empty ring allocates nothing: pollers
// (shmnet spins on it) would otherwise allocate on every look.
func TestTryOnEmptyAllocatesNothing(t *testing.T) {
	r, err := Create(testName(t), 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	buf := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() { c.TryRead() }); n != 0 {
		t.Errorf("TryRead on an empty ring: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.TryReceive(buf) }); n != 0 {
		t.Errorf("TryReceive on an empty ring: %v allocations, want 0", n)
	}
}
