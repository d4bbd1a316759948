package ring

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkThroughput: a producer goroutine and a consumer goroutine, copy
// in and copy out. For two processes see cmd/shmbench.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{64, 1024, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			r, err := Create(testName(b), 4<<20, &Options{MaxMessage: size})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			p, _ := r.Producer()
			c, _ := r.Consumer()
			done := make(chan struct{})
			go func() {
				buf := make([]byte, size)
				for {
					if _, err := c.Receive(buf); err != nil {
						close(done)
						return
					}
				}
			}()
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				p.Send(msg)
			}
			p.Close()
			<-done
		})
	}
}

// BenchmarkPingPong: a round trip through two rings between goroutines.
func BenchmarkPingPong(b *testing.B) {
	for _, polling := range []bool{false, true} {
		b.Run(fmt.Sprintf("polling=%v", polling), func(b *testing.B) {
			opts := &Options{MaxMessage: 64, Polling: polling}
			ra, _ := Create(testName(b), 4096, opts)
			rb, _ := Create(testName(b), 4096, opts)
			defer ra.Close()
			defer rb.Close()
			pa, _ := ra.Producer()
			ca, _ := ra.Consumer()
			pb, _ := rb.Producer()
			cb, _ := rb.Consumer()
			go func() {
				for {
					msg, err := ca.Read()
					if err != nil {
						pb.Close()
						return
					}
					pb.Send(msg)
					ca.Release()
				}
			}()
			msg, buf := make([]byte, 64), make([]byte, 64)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				pa.Send(msg)
				cb.Receive(buf)
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/roundtrip")
			pa.Close()
		})
	}
}
