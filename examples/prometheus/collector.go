package main

import (
	"github.com/mindmeld-go/shm/ring"
	"github.com/prometheus/client_golang/prometheus"
)

// A Collector exports one ring's statistics. It implements
// prometheus.Collector: each scrape calls [ring.Ring.Stats] once.
type Collector struct {
	r       *ring.Ring
	metrics []metric
	errors  *prometheus.Desc
}

// metric is one exported figure of ring.Stats.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(s *ring.Stats) float64
}

// NewCollector returns a Collector for r, whose metrics carry the label
// ring = r's name.
func NewCollector(r *ring.Ring) *Collector {
	labels := prometheus.Labels{"ring": r.Name()}
	c := &Collector{r: r}
	add := func(name, help string, kind prometheus.ValueType, value func(s *ring.Stats) float64) {
		c.metrics = append(c.metrics, metric{prometheus.NewDesc("shm_ring_"+name, help, nil, labels), kind, value})
	}
	counter := func(name, help string, value func(s *ring.Stats) uint64) {
		add(name, help, prometheus.CounterValue, func(s *ring.Stats) float64 { return float64(value(s)) })
	}
	gauge := func(name, help string, value func(s *ring.Stats) float64) {
		add(name, help, prometheus.GaugeValue, value)
	}
	counter("messages_in_total", "Messages committed by producers.", func(s *ring.Stats) uint64 { return s.MessagesIn })
	counter("messages_out_total", "Messages released by the consumer.", func(s *ring.Stats) uint64 { return s.MessagesOut })
	counter("payload_in_bytes_total", "Payload bytes committed.", func(s *ring.Stats) uint64 { return s.PayloadIn })
	counter("payload_out_bytes_total", "Payload bytes released.", func(s *ring.Stats) uint64 { return s.PayloadOut })
	counter("ring_in_bytes_total", "Bytes of the data area claimed (tail), headers and padding included.", func(s *ring.Stats) uint64 { return s.BytesIn })
	counter("ring_out_bytes_total", "Bytes of the data area released (head).", func(s *ring.Stats) uint64 { return s.BytesOut })
	counter("full_waits_total", "Blocking claims that found the ring full.", func(s *ring.Stats) uint64 { return s.FullWaits })
	counter("empty_waits_total", "Blocking reads that found the ring empty.", func(s *ring.Stats) uint64 { return s.EmptyWaits })
	counter("producer_sleeps_total", "Futex waits of producers.", func(s *ring.Stats) uint64 { return s.ProducerSleeps })
	counter("consumer_sleeps_total", "Futex waits of the consumer.", func(s *ring.Stats) uint64 { return s.ConsumerSleeps })
	counter("producer_wakes_total", "Wakes of sleeping producers.", func(s *ring.Stats) uint64 { return s.ProducerWakes })
	counter("consumer_wakes_total", "Wakes of a sleeping consumer.", func(s *ring.Stats) uint64 { return s.ConsumerWakes })
	counter("producer_takeovers_total", "Dead producers' slots taken over.", func(s *ring.Stats) uint64 { return s.ProducerTakeovers })
	counter("consumer_takeovers_total", "Dead consumers replaced.", func(s *ring.Stats) uint64 { return s.ConsumerTakeovers })
	counter("dead_producers_total", "Dead producers reaped by the consumer.", func(s *ring.Stats) uint64 { return s.DeadProducersReaped })
	counter("dead_claims_recovered_total", "Claims of dead producers turned into padding.", func(s *ring.Stats) uint64 { return s.DeadClaimsRecovered })
	counter("corruptions_total", "Ends that saw corrupt data.", func(s *ring.Stats) uint64 { return s.Corruptions })
	gauge("messages_in_flight", "Messages committed and not yet released.", func(s *ring.Stats) float64 { return float64(s.MessagesInFlight) })
	gauge("fill_bytes", "Bytes of the data area in use.", func(s *ring.Stats) float64 { return float64(s.BytesInFlight) })
	gauge("capacity_bytes", "Size of the data area.", func(s *ring.Stats) float64 { return float64(s.Capacity) })
	gauge("producers", "Producer slots held.", func(s *ring.Stats) float64 { return float64(s.Producers) })
	gauge("consumer_attached", "1 while a consumer is attached.", func(s *ring.Stats) float64 {
		if s.Consumer {
			return 1
		}
		return 0
	})
	c.errors = prometheus.NewDesc("shm_ring_stats_error", "1 when the ring's statistics could not be read (closed, or its segment shrunk).", nil, labels)
	return c
}

// Describe sends the descriptors of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	ch <- c.errors
}

// Collect reads the ring's statistics once and sends every metric. When
// they cannot be read it sends only shm_ring_stats_error = 1.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.r.Stats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.GaugeValue, 0)
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&s))
	}
}
