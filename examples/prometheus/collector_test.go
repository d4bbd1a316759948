package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
	"github.com/mindmeld-go/shm/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var children = map[string]func(args []string) int{
	// send NAME N: sends N messages of 10 bytes and closes.
	"send": func(args []string) int {
		r, err := ring.Open(args[0], nil)
		if err != nil {
			return childtest.Fail("open: %v", err)
		}
		defer r.Close()
		p, err := r.Producer()
		if err != nil {
			return childtest.Fail("producer: %v", err)
		}
		var n int
		fmt.Sscan(args[1], &n)
		for range n {
			if err := p.Send([]byte("0123456789")); err != nil {
				return childtest.Fail("send: %v", err)
			}
		}
		p.Close()
		return 0
	},
}

var harness = childtest.New("promtest", shm.Unlink, children)

func TestMain(m *testing.M) { harness.Main(m) }

// A producer process sends 5 messages, the test's consumer receives 2: the
// collector's metrics say so, through the registry and over HTTP.
func TestCollector(t *testing.T) {
	name := harness.Name(t)
	r, err := ring.Create(name, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	childtest.Run(t, "send", name, "5")
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for range 2 {
		if _, err := c.Receive(buf); err != nil {
			t.Fatal(err)
		}
	}
	col := NewCollector(r)
	if n := testutil.CollectAndCount(col); n != 23 {
		t.Errorf("%d metrics, want 23", n)
	}
	want := fmt.Sprintf(`
# HELP shm_ring_messages_in_total Messages committed by producers.
# TYPE shm_ring_messages_in_total counter
shm_ring_messages_in_total{ring=%[1]q} 5
# HELP shm_ring_messages_out_total Messages released by the consumer.
# TYPE shm_ring_messages_out_total counter
shm_ring_messages_out_total{ring=%[1]q} 2
# HELP shm_ring_messages_in_flight Messages committed and not yet released.
# TYPE shm_ring_messages_in_flight gauge
shm_ring_messages_in_flight{ring=%[1]q} 3
# HELP shm_ring_payload_in_bytes_total Payload bytes committed.
# TYPE shm_ring_payload_in_bytes_total counter
shm_ring_payload_in_bytes_total{ring=%[1]q} 50
# HELP shm_ring_fill_bytes Bytes of the data area in use.
# TYPE shm_ring_fill_bytes gauge
shm_ring_fill_bytes{ring=%[1]q} 72
# HELP shm_ring_consumer_attached 1 while a consumer is attached.
# TYPE shm_ring_consumer_attached gauge
shm_ring_consumer_attached{ring=%[1]q} 1
`, r.Name())
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"shm_ring_messages_in_total", "shm_ring_messages_out_total", "shm_ring_messages_in_flight",
		"shm_ring_payload_in_bytes_total", "shm_ring_fill_bytes", "shm_ring_consumer_attached"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(registry(col)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	// Over HTTP, as Prometheus scrapes it.
	srv := httptest.NewServer(promhttp.HandlerFor(registry(col), promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if line := fmt.Sprintf("shm_ring_messages_out_total{ring=%q} 2", r.Name()); !strings.Contains(string(body), line) {
		t.Errorf("/metrics lacks %q:\n%s", line, body)
	}

	// A closed ring: only the error gauge, at 1.
	c.Close()
	r.Close()
	if err := testutil.CollectAndCompare(col, strings.NewReader(fmt.Sprintf(`
# HELP shm_ring_stats_error 1 when the ring's statistics could not be read (closed, or its segment shrunk).
# TYPE shm_ring_stats_error gauge
shm_ring_stats_error{ring=%q} 1
`, r.Name()))); err != nil {
		t.Error(err)
	}
}

func registry(c prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return reg
}

// TestCommand runs the example command as a user would, scrapes it, and
// stops it.
func TestCommand(t *testing.T) {
	name := harness.Name(t)
	r, err := ring.Create(name, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	childtest.Run(t, "send", name, "7")
	bin := t.TempDir() + "/prometheus-example"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-ring", name, "-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	i := strings.Index(line, "http://")
	if err != nil || i < 0 {
		t.Fatalf("the command printed %q, %v", line, err)
	}
	resp, err := http.Get(strings.TrimSpace(line[i:]))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("shm_ring_messages_in_flight{ring=%q} 7", r.Name()); !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %q:\n%s", want, body)
	}
}
