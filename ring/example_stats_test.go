package ring_test

import (
	"expvar"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mindmeld-go/shm/ring"
)

// Publish a ring's statistics with expvar: importing net/http/pprof or
// serving expvar.Handler then shows them at /debug/vars, read fresh on
// every request.
func ExampleRing_Stats() {
	name := fmt.Sprintf("/example-stats-%d-%d", os.Getpid(), time.Now().UnixNano())
	r, err := ring.Create(name, 4096, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Unlink()
	defer r.Close()

	// expvar.Publish panics on a name in use: one name per ring.
	expvar.Publish("ring"+name, expvar.Func(func() any {
		s, err := r.Stats()
		if err != nil {
			return err.Error()
		}
		return s
	}))

	p, _ := r.Producer()
	c, _ := r.Consumer()
	for _, m := range []string{"one", "two", "three"} {
		p.Send([]byte(m))
	}
	buf := make([]byte, 64)
	c.Receive(buf)

	fmt.Println(expvar.Get("ring" + name))
	s, _ := r.Stats()
	fmt.Println(s)
	// Output:
	// {"Capacity":4096,"BytesIn":48,"BytesOut":16,"BytesInFlight":32,"MessagesIn":3,"PayloadIn":11,"MessagesOut":1,"PayloadOut":3,"MessagesInFlight":2,"FullWaits":0,"EmptyWaits":0,"ProducerSleeps":0,"ConsumerSleeps":0,"ConsumerWakes":0,"ProducerWakes":0,"ProducerTakeovers":0,"ConsumerTakeovers":0,"DeadProducersReaped":0,"DeadClaimsRecovered":0,"Corruptions":0,"Producers":1,"Consumer":true}
	// in 3 msgs/11 B, out 1 msgs/3 B, in flight 2 msgs/32 of 4096 B, waits full 0 empty 0, sleeps producers 0 consumer 0, dead producers 0, takeovers 0+0, recovered 0, corrupt 0
}
