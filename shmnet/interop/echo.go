package interop

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// Codec is a gRPC codec for raw bytes: messages are *[]byte. It lets the
// tests and benchmarks define services without generated code (no protoc
// here). Its name, "raw", is the content subtype: calls pass
// grpc.CallContentSubtype(CodecName).
type Codec struct{}

// CodecName is the name Codec is registered under.
const CodecName = "raw"

func init() { encoding.RegisterCodec(Codec{}) }

// Marshal returns the bytes of a *[]byte.
func (Codec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *p, nil
}

// Unmarshal copies data into a *[]byte (gRPC reuses data afterwards).
func (Codec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

// Name returns CodecName.
func (Codec) Name() string { return CodecName }

// Method names of the echo service.
const (
	UnaryMethod = "/shmnet.interop.Echo/Unary"
	BidiMethod  = "/shmnet.interop.Echo/Bidi"
	SinkMethod  = "/shmnet.interop.Echo/Sink"
)

// EchoServer implements the echo service: Unary returns its request; a
// request beginning with "wait" blocks until the call's context is done.
// Bidi echoes each message until the client closes its side; Sink counts
// what it receives.
type EchoServer struct {
	// Cancelled counts the "wait" calls whose context ended.
	Cancelled atomic.Int64
}

type echoService interface{}

// EchoDesc is the echo service, written by hand instead of by protoc.
var EchoDesc = grpc.ServiceDesc{
	ServiceName: "shmnet.interop.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			if len(in) >= 4 && string(in[:4]) == "wait" {
				select {
				case <-ctx.Done():
					srv.(*EchoServer).Cancelled.Add(1)
					return nil, status.FromContextError(ctx.Err()).Err()
				case <-time.After(time.Minute):
					return nil, status.Error(codes.Internal, "not cancelled within a minute")
				}
			}
			return &in, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName: "Bidi",
		Handler: func(_ any, stream grpc.ServerStream) error {
			var msg []byte
			for {
				if err := stream.RecvMsg(&msg); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := stream.SendMsg(&msg); err != nil {
					return err
				}
			}
		},
		ServerStreams: true,
		ClientStreams: true,
	}, {
		StreamName: "Sink",
		Handler: func(_ any, stream grpc.ServerStream) error {
			var msg []byte
			total := 0
			for {
				if err := stream.RecvMsg(&msg); err == io.EOF {
					out := []byte(fmt.Sprint(total))
					return stream.SendMsg(&out)
				} else if err != nil {
					return err
				}
				total += len(msg)
			}
		},
		ClientStreams: true,
	}},
}

// Unary calls the echo service's Unary method.
func Unary(ctx context.Context, cc grpc.ClientConnInterface, in []byte, opts ...grpc.CallOption) ([]byte, error) {
	var out []byte
	err := cc.Invoke(ctx, UnaryMethod, &in, &out, append(opts, grpc.CallContentSubtype(CodecName))...)
	return out, err
}

// Sink opens a Sink stream: it receives messages until CloseSend and then
// answers with their total length in decimal.
func Sink(ctx context.Context, cc grpc.ClientConnInterface, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return cc.NewStream(ctx, &EchoDesc.Streams[1], SinkMethod, append(opts, grpc.CallContentSubtype(CodecName))...)
}

// Bidi opens a Bidi stream: SendMsg and RecvMsg take *[]byte.
func Bidi(ctx context.Context, cc grpc.ClientConnInterface, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return cc.NewStream(ctx, &EchoDesc.Streams[0], BidiMethod, append(opts, grpc.CallContentSubtype(CodecName))...)
}
