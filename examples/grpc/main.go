// Command grpc runs a gRPC server and client over shmnet in two processes:
// the server is grpc.NewServer().Serve on a shmnet.Listener, the client a
// grpc.NewClient with grpc.WithContextDialer(shmnet.DialContext). Nothing
// else changes: over TCP the same code would use net.Listen and the
// default dialer.
//
//	go run .            # in examples/grpc: server in a child process, then calls
//
// The service is written by hand (a grpc.ServiceDesc with a raw-bytes
// codec) so that the example needs no protoc; a real service would use its
// generated RegisterXServer and NewXClient exactly the same way.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mindmeld-go/shm/shmnet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/peer"
)

const serverEnv = "SHM_GRPC_EXAMPLE_SERVER"

func main() {
	log.SetFlags(0)
	if addr := os.Getenv(serverEnv); addr != "" {
		server(addr)
		return
	}
	dir, err := os.MkdirTemp("", "shmgrpc")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	addr := filepath.Join(dir, "grpc.sock")

	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	srv := exec.Command(exe)
	srv.Env = append(os.Environ(), serverEnv+"="+addr)
	srv.Stdout, srv.Stderr = os.Stdout, os.Stderr
	stdin, _ := srv.StdinPipe() // the server stops when this closes
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Wait()
	defer stdin.Close()
	for i := 0; ; i++ { // wait for the socket
		if _, err := os.Stat(addr); err == nil {
			break
		} else if i == 500 {
			log.Fatal("the server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The only shmnet-specific line of the client.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(shmnet.DialContext))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	in := []byte("hello over shared memory")
	var out []byte
	if err := cc.Invoke(ctx, "/example.Greeter/Upper", &in, &out, grpc.CallContentSubtype(rawCodec{}.Name())); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("[%d] Upper(%q) = %q\n", os.Getpid(), in, out)

	st, err := cc.NewStream(ctx, &greeter.Streams[0], "/example.Greeter/Chat", grpc.CallContentSubtype(rawCodec{}.Name()))
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range []string{"one", "two", "three"} {
		msg := []byte(w)
		if err := st.SendMsg(&msg); err != nil {
			log.Fatal(err)
		}
		if err := st.RecvMsg(&out); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("[%d] Chat: sent %q, got %q\n", os.Getpid(), w, out)
	}
	st.CloseSend()
	if err := st.RecvMsg(&out); err != io.EOF {
		log.Fatalf("end of stream: %v", err)
	}
}

func server(addr string) {
	l, err := shmnet.Listen(addr) // the only shmnet-specific line of the server
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&greeter, struct{}{})
	go func() { io.Copy(io.Discard, os.Stdin); s.Stop() }()
	fmt.Printf("[%d] serving gRPC on %s\n", os.Getpid(), addr)
	s.Serve(l)
	fmt.Printf("[%d] stopped\n", os.Getpid())
}

// greeter is a service with a unary method, Upper, and a bidirectional
// stream, Chat, both on raw bytes.
var greeter = grpc.ServiceDesc{
	ServiceName: "example.Greeter",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Upper",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			if p, ok := peer.FromContext(ctx); ok {
				c := p.Addr.(shmnet.Addr)
				fmt.Printf("[%d] Upper called by pid %d over %s\n", os.Getpid(), c.PID, c.Network())
			}
			out := []byte(strings.ToUpper(string(in)))
			return &out, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName: "Chat",
		Handler: func(_ any, st grpc.ServerStream) error {
			for {
				var msg []byte
				if err := st.RecvMsg(&msg); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				msg = append([]byte("echo: "), msg...)
				if err := st.SendMsg(&msg); err != nil {
					return err
				}
			}
		},
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// rawCodec carries *[]byte messages as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func init() { encoding.RegisterCodec(rawCodec{}) }
