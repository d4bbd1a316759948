// Command prometheus serves a ring's statistics ([ring.Ring.Stats]) as
// Prometheus metrics at /metrics, through a [prometheus.Collector] that
// reads them fresh on every scrape. The library itself takes no dependency:
// this example is its own module.
//
//	go run . -ring /myapp-req -addr :9100
//
// Every counter of [ring.Stats] becomes a counter (shm_ring_..._total) and
// the fill a gauge, each with the label ring="NAME". The collector only
// reads: it opens the ring, and scraping never attaches an end.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"

	"github.com/mindmeld-go/shm/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	name := flag.String("ring", "", "name of the ring to export")
	addr := flag.String("addr", ":9100", "address to serve /metrics on")
	flag.Parse()
	if *name == "" {
		log.Fatal("usage: prometheus -ring NAME [-addr :9100]")
	}
	r, err := ring.Open(*name, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(r))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving the statistics of %s on http://%s/metrics", r.Name(), ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
