package ring

import "testing"

// BenchmarkSendReceive1: Send then Receive of one 64-byte message in one
// goroutine: the per-message cost of the code, without cross-core traffic.
func BenchmarkSendReceive1(b *testing.B) {
	r, err := Create(testName(b), 1<<20, &Options{MaxMessage: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()
	msg, buf := make([]byte, 64), make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		p.Send(msg)
		c.Receive(buf)
	}
}
