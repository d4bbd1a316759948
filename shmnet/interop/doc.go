// Package interop runs code that no one here wrote over shmnet:
// golang.org/x/net/nettest's net.Conn conformance suite, net/http and
// gRPC. It is a module of its own so that the library's module depends
// only on golang.org/x/sys.
package interop
