// Command shmnetcmp compares a shmnet connection with a Unix socket and
// TCP on loopback, in one run, between two processes (it starts itself as
// the server): raw net.Conn echo round trips and streaming throughput,
// gRPC unary round trips and streaming, and net/http requests per second.
// It prints each figure and its ratio to the Unix socket's.
//
//	go run ./cmd/shmnetcmp [-rounds 3] [-time 1s]
//
// Each measurement runs once per round for every transport in turn; the
// best round of each is kept, so that a noisy neighbour on a shared
// machine hurts every transport alike.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mindmeld-go/shm/shmnet"
	"github.com/mindmeld-go/shm/shmnet/interop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const serverEnv = "SHMNETCMP_SERVER"

// addrs are the server's listeners, by service and transport.
type addrs map[string]map[string]string

var transports = []string{"shm", "shm-poll", "uds", "tcp"}

func main() {
	if dir := os.Getenv(serverEnv); dir != "" {
		serve(dir)
		return
	}
	rounds := flag.Int("rounds", 3, "rounds of every measurement")
	dur := flag.Duration("time", time.Second, "length of each measurement")
	only := flag.String("only", "", "run only the measurements whose name contains this")
	flag.Parse()

	dir, err := os.MkdirTemp("", "shmnetcmp")
	check(err)
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serverEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	check(err)
	// The server exits when its standard input ends: when we do.
	_, err = cmd.StdinPipe()
	check(err)
	check(cmd.Start())
	server = cmd
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var as addrs
	check(json.NewDecoder(bufio.NewReader(out)).Decode(&as))

	fmt.Printf("shmnetcmp: %s/%s, %d CPUs, %s, best of %d rounds of %v; client and server in two processes\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *rounds, *dur)
	fmt.Printf("shm: ring %d KiB per direction, waits spin then park; shm-poll: Dialer/ListenConfig.Polling\n\n", shmnet.DefaultRingSize>>10)

	type row struct {
		name   string
		unit   string
		higher bool // higher is better
		vals   map[string]float64
		extra  map[string]string
	}
	var rows []row
	measure := func(name, unit string, higher bool, f func(tr string) (float64, string)) {
		if *only != "" && !strings.Contains(name, *only) {
			return
		}
		r := row{name: name, unit: unit, higher: higher, vals: map[string]float64{}, extra: map[string]string{}}
		for range *rounds {
			for _, tr := range transports {
				v, extra := f(tr)
				if old, ok := r.vals[tr]; !ok || (higher && v > old) || (!higher && v < old) {
					r.vals[tr] = v
					r.extra[tr] = extra
				}
			}
		}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "done: %s\n", name)
	}

	for _, n := range []int{64, 1 << 10, 64 << 10} {
		measure(fmt.Sprintf("raw echo %s round trip p50", size(n)), "µs", false, func(tr string) (float64, string) {
			return rawEcho(dial(tr, as["raw"][tr]), n, *dur), ""
		})
	}
	measure("raw 1 MiB writes, throughput", "GB/s", true, func(tr string) (float64, string) {
		return rawStream(dial(tr, as["raw"][tr]), 1<<20, *dur), ""
	})
	measure("gRPC unary 1 KiB p50", "µs", false, func(tr string) (float64, string) {
		p50, allocs := grpcUnary(as["grpc"][tr], tr, 1<<10, *dur)
		return p50, fmt.Sprintf("%.0f allocs/call", allocs)
	})
	measure("gRPC stream of 1 MiB messages", "GB/s", true, func(tr string) (float64, string) {
		return grpcStream(as["grpc"][tr], tr, 1<<20, *dur), ""
	})
	measure("net/http GET 1 KiB, 4 clients", "req/s", true, func(tr string) (float64, string) {
		return httpRate(as["http"][tr], tr, *dur), ""
	})

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\tunit\t")
	for _, tr := range transports {
		fmt.Fprintf(tw, "%s\t", tr)
	}
	fmt.Fprintf(tw, "shm/uds\tshm-poll/uds\tshm/tcp\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t", r.name, r.unit)
		for _, tr := range transports {
			fmt.Fprintf(tw, "%.3g\t", r.vals[tr])
		}
		fmt.Fprintf(tw, "%.2f×\t%.2f×\t%.2f×\t\n", r.vals["shm"]/r.vals["uds"], r.vals["shm-poll"]/r.vals["uds"], r.vals["shm"]/r.vals["tcp"])
	}
	tw.Flush()
	for _, r := range rows {
		if r.extra["shm"] != "" {
			fmt.Printf("\n%s:", r.name)
			for _, tr := range transports {
				fmt.Printf("  %s %s", tr, r.extra[tr])
			}
			fmt.Println()
		}
	}
	fmt.Println("\nratios: time per round trip (lower is better) and throughput (higher is better), shm over the other")
}

func size(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

var server *exec.Cmd

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmnetcmp:", err)
		if server != nil {
			server.Process.Kill()
		}
		os.Exit(1)
	}
}

func dialer(tr string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		switch tr {
		case "shm":
			return shmnet.DialContext(ctx, addr)
		case "shm-poll":
			d := shmnet.Dialer{Polling: true}
			return d.DialContext(ctx, addr)
		case "uds":
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

func dial(tr, addr string) net.Conn {
	c, err := dialer(tr)(context.Background(), addr)
	check(err)
	return c
}

// rawEcho measures round trips of n bytes for about d and returns the
// median in µs.
func rawEcho(c net.Conn, n int, d time.Duration) float64 {
	defer c.Close()
	c.Write([]byte{'E'})
	buf := make([]byte, n)
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		t0 := time.Now()
		_, err := c.Write(buf)
		check(err)
		_, err = io.ReadFull(c, buf)
		check(err)
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return float64(lat[len(lat)/2].Nanoseconds()) / 1e3
}

// rawStream writes chunks of n bytes for about d; the server counts and
// acknowledges. It returns GB/s.
func rawStream(c net.Conn, n int, d time.Duration) float64 {
	defer c.Close()
	buf := make([]byte, n)
	// As many writes as fit in d at 2 GB/s, at least 64.
	count := max(64, int64(d.Seconds()*2e9)/int64(n))
	hdr := make([]byte, 9)
	hdr[0] = 'S'
	binary.LittleEndian.PutUint64(hdr[1:], uint64(count)*uint64(n))
	t0 := time.Now()
	_, err := c.Write(hdr)
	check(err)
	for range count {
		_, err := c.Write(buf)
		check(err)
	}
	_, err = io.ReadFull(c, hdr[:1])
	check(err)
	return float64(count) * float64(n) / time.Since(t0).Seconds() / 1e9
}

func grpcConn(addr, tr string) *grpc.ClientConn {
	dial := dialer(tr)
	cc, err := grpc.NewClient("passthrough:///"+tr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return dial(ctx, addr) }),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	check(err)
	return cc
}

// grpcUnary returns the median round trip in µs and the client's
// allocations per call.
func grpcUnary(addr, tr string, n int, d time.Duration) (float64, float64) {
	cc := grpcConn(addr, tr)
	defer cc.Close()
	in := make([]byte, n)
	ctx := context.Background()
	for range 100 { // connect and warm up
		_, err := interop.Unary(ctx, cc, in)
		check(err)
	}
	var lat []time.Duration
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for end := time.Now().Add(d); time.Now().Before(end); {
		t0 := time.Now()
		_, err := interop.Unary(ctx, cc, in)
		check(err)
		lat = append(lat, time.Since(t0))
	}
	runtime.ReadMemStats(&ms1)
	slices.Sort(lat)
	// lat's own growth is a handful of allocations over thousands of calls.
	return float64(lat[len(lat)/2].Nanoseconds()) / 1e3, float64(ms1.Mallocs-ms0.Mallocs) / float64(len(lat))
}

// grpcStream sends messages of n bytes on a client stream for about d and
// returns GB/s.
func grpcStream(addr, tr string, n int, d time.Duration) float64 {
	cc := grpcConn(addr, tr)
	defer cc.Close()
	ctx := context.Background()
	msg := make([]byte, n)
	_, err := interop.Unary(ctx, cc, nil) // connect
	check(err)
	st, err := interop.Sink(ctx, cc)
	check(err)
	t0 := time.Now()
	sent := 0
	for end := t0.Add(d); time.Now().Before(end); sent++ {
		check(st.SendMsg(&msg))
	}
	check(st.CloseSend())
	var out []byte
	check(st.RecvMsg(&out))
	took := time.Since(t0)
	if got, _ := strconv.Atoi(string(out)); got != sent*n {
		check(fmt.Errorf("grpc sink got %d bytes, sent %d", got, sent*n))
	}
	return float64(sent*n) / took.Seconds() / 1e9
}

// httpRate runs 4 clients for about d and returns requests per second.
func httpRate(addr, tr string, d time.Duration) float64 {
	dial := dialer(tr)
	t := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, addr) },
		MaxIdleConnsPerHost: 8,
	}
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t}
	get := func() {
		resp, err := client.Get("http://x/1k")
		check(err)
		_, err = io.Copy(io.Discard, resp.Body)
		check(err)
		resp.Body.Close()
	}
	for range 4 {
		get()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	t0 := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for end := t0.Add(d); time.Now().Before(end); n++ {
				get()
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(total) / time.Since(t0).Seconds()
}

// serve is the server process: it listens on every transport for every
// service and prints the addresses as JSON.
func serve(dir string) {
	as := addrs{"raw": {}, "grpc": {}, "http": {}}
	listen := func(service, tr string) net.Listener {
		var l net.Listener
		var err error
		switch tr {
		case "shm":
			l, err = shmnet.Listen(filepath.Join(dir, service+".shm"))
		case "shm-poll":
			lc := shmnet.ListenConfig{Polling: true}
			l, err = lc.Listen(filepath.Join(dir, service+".poll"))
		case "uds":
			l, err = net.Listen("unix", filepath.Join(dir, service+".uds"))
		case "tcp":
			l, err = net.Listen("tcp", "127.0.0.1:0")
		}
		check(err)
		as[service][tr] = l.Addr().String()
		return l
	}
	page := make([]byte, 1<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/1k", func(w http.ResponseWriter, r *http.Request) { w.Write(page) })
	for _, tr := range transports {
		go rawServe(listen("raw", tr))
		srv := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))
		srv.RegisterService(&interop.EchoDesc, &interop.EchoServer{})
		go srv.Serve(listen("grpc", tr))
		go http.Serve(listen("http", tr), mux)
	}
	check(json.NewEncoder(os.Stdout).Encode(as))
	io.Copy(io.Discard, os.Stdin) // until the client exits
	os.Exit(0)
}

// rawServe serves raw connections: 'E' echoes; 'S' and a length reads
// that many bytes and answers one byte.
func rawServe(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var mode [1]byte
			if _, err := io.ReadFull(c, mode[:]); err != nil {
				return
			}
			buf := make([]byte, 1<<20)
			switch mode[0] {
			case 'E':
				io.CopyBuffer(c, struct{ io.Reader }{c}, buf)
			case 'S':
				var n [8]byte
				if _, err := io.ReadFull(c, n[:]); err != nil {
					return
				}
				if _, err := io.CopyBuffer(io.Discard, io.LimitReader(c, int64(binary.LittleEndian.Uint64(n[:]))), buf); err == nil {
					c.Write([]byte{1})
				}
			}
		}()
	}
}
