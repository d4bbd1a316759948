package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mindmeld-go/shm/shmnet"
)

// countingListener counts the connections accepted.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// randReader is a deterministic stream of pseudo-random bytes.
type randReader struct{ r *rand.ChaCha8 }

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func newRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return randReader{rand.NewChaCha8(s)}
}

func httpServer(t *testing.T) (*countingListener, *http.Client) {
	t.Helper()
	sl, err := shmnet.Listen(sockPath(t))
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: sl}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello/{n}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.PathValue("n"))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	mux.HandleFunc("/download/{size}", func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.ParseInt(r.PathValue("size"), 10, 64)
		h := sha256.New()
		w.Header().Set("Trailer", "X-Sha256")
		io.Copy(io.MultiWriter(w, h), io.LimitReader(newRand(2), size))
		w.Header().Set("X-Sha256", hex.EncodeToString(h.Sum(nil)))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := sl.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return shmnet.DialContext(ctx, addr)
		},
		MaxIdleConnsPerHost: 8,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return l, &http.Client{Transport: tr}
}

func TestHTTPRequests(t *testing.T) {
	l, client := httpServer(t)
	const requests, workers = 1000, 4
	var reused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += workers {
				trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
					if ci.Reused {
						reused.Add(1)
					}
				}}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://shm/hello/"+strconv.Itoa(i), nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != "hello "+strconv.Itoa(i) {
					t.Errorf("request %d: body %q, %v", i, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests over %d connections, %d on reused connections", requests, l.n.Load(), reused.Load())
	// The transport may dial a new connection when a request comes a
	// moment before the previous response's connection is idle again (as
	// over TCP): keep-alive is working if nearly every request reuses one.
	if l.n.Load() > requests/20 || reused.Load() < requests*9/10 {
		t.Errorf("%d connections for %d requests from %d goroutines, %d on reused connections: keep-alive does not work", l.n.Load(), requests, workers, reused.Load())
	}
}

func TestHTTPLargeBodies(t *testing.T) {
	size := int64(100 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	_, client := httpServer(t)

	// Upload: the server hashes what it receives.
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(newRand(1), size), h)
	resp, err := client.Post("http://shm/upload", "application/octet-stream", body)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", size, h.Sum(nil)); string(got) != want {
		t.Fatalf("upload: server saw %q, want %q", got, want)
	}

	// Download: the server sends its hash in a trailer.
	resp, err = client.Get("http://shm/download/" + strconv.FormatInt(size, 10))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	h = sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v, want %d", n, err, size)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), resp.Trailer.Get("X-Sha256"); got != want {
		t.Fatalf("download: sha256 %s, server sent %s", got, want)
	}
}
