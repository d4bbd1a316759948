package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm/shmnet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// grpcServe serves the echo service on a new shmnet listener.
func grpcServe(t *testing.T) (*EchoServer, string) {
	t.Helper()
	l, err := shmnet.Listen(sockPath(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	impl := &EchoServer{}
	srv.RegisterService(&EchoDesc, impl)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return impl, l.Addr().String()
}

// grpcDial returns a client connection that dials addr over shmnet.
func grpcDial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///shm",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return shmnet.DialContext(ctx, addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed)
	}
	return b
}

func TestGRPCConcurrent(t *testing.T) {
	_, addr := grpcServe(t)
	cc := grpcDial(t, addr)
	ctx := context.Background()
	sizes := []int{0, 1, 100, 1000, 16 << 10, 100 << 10, 1 << 20}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() { // unary
			defer wg.Done()
			for i := range 100 {
				in := pattern(sizes[(i+g)%len(sizes)], g*1000+i)
				out, err := Unary(ctx, cc, in)
				if err != nil || !bytes.Equal(out, in) {
					t.Errorf("goroutine %d call %d: %d bytes back, %v, want the %d sent", g, i, len(out), err, len(in))
					return
				}
			}
		}()
	}
	for g := range 4 {
		wg.Add(1)
		go func() { // bidirectional streams
			defer wg.Done()
			st, err := Bidi(ctx, cc)
			if err != nil {
				t.Errorf("Bidi: %v", err)
				return
			}
			for i := range 100 {
				in := pattern(sizes[(i*3+g)%len(sizes)], g*7+i)
				if err := st.SendMsg(&in); err != nil {
					t.Errorf("stream %d: SendMsg %d: %v", g, i, err)
					return
				}
				var out []byte
				if err := st.RecvMsg(&out); err != nil || !bytes.Equal(out, in) {
					t.Errorf("stream %d message %d: %d bytes back, %v, want %d", g, i, len(out), err, len(in))
					return
				}
			}
			st.CloseSend()
			var out []byte
			if err := st.RecvMsg(&out); err == nil {
				t.Errorf("stream %d: RecvMsg after CloseSend = nil, want io.EOF", g)
			}
		}()
	}
	wg.Wait()
}

func TestGRPCDeadlineAndCancel(t *testing.T) {
	impl, addr := grpcServe(t)
	cc := grpcDial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Unary(ctx, cc, []byte("wait"))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("call past its deadline = %v, want codes.DeadlineExceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = Unary(ctx, cc, []byte("wait"))
	if status.Code(err) != codes.Canceled {
		t.Errorf("cancelled call = %v, want codes.Canceled", err)
	}
	// The server's handlers see both ends.
	for start := time.Now(); impl.Cancelled.Load() < 2 && time.Since(start) < 10*time.Second; {
		time.Sleep(time.Millisecond)
	}
	if n := impl.Cancelled.Load(); n != 2 {
		t.Errorf("%d server handlers saw their context end, want 2", n)
	}
	// The connection is still good.
	if out, err := Unary(context.Background(), cc, []byte("still here")); err != nil || string(out) != "still here" {
		t.Errorf("call after cancellations = %q, %v", out, err)
	}
}

func init() {
	children["grpc-server"] = func(args []string) int {
		l, err := shmnet.Listen(args[0])
		if err != nil {
			fmt.Println(err)
			return 1
		}
		srv := grpc.NewServer()
		srv.RegisterService(&EchoDesc, &EchoServer{})
		fmt.Println("ready")
		srv.Serve(l)
		return 0
	}
}

func TestGRPCServerKilled(t *testing.T) {
	addr := sockPath(t)
	cmd := startChild(t, "grpc-server", addr)
	cc := grpcDial(t, addr)
	st, err := Bidi(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	in := []byte("before")
	var out []byte
	if err := st.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	if err := st.RecvMsg(&out); err != nil || string(out) != "before" {
		t.Fatalf("RecvMsg = %q, %v", out, err)
	}
	// A call in flight on another goroutine, blocked in the server.
	unary := make(chan error, 1)
	go func() { _, err := Unary(context.Background(), cc, []byte("wait")); unary <- err }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	err = st.RecvMsg(&out)
	took := time.Since(start)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("RecvMsg on a stream whose server was killed = %v, want codes.Unavailable", err)
	}
	t.Logf("stream: %v, %v after SIGKILL", err, took)
	select {
	case err := <-unary:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("unary call in flight when the server was killed = %v, want codes.Unavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("unary call in flight did not return after the server was killed")
	}
	if took > 5*time.Second {
		t.Errorf("the death was seen after %v; want milliseconds", took)
	}
	if _, err := os.Stat(addr); err == nil {
		// The killed server could not remove its socket file; a new
		// server must remove it before listening again.
		os.Remove(addr)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Log(err)
	}
}
