// Package rpcx serves internal RPC between services (net/rpc with JSON-RPC codec).
package rpcx

import (
	"context"
	"errors"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"strings"
)

// Echo is the RPC service every service exposes for health probes.
type Echo struct{}

// Upper echoes its argument in upper case.
func (Echo) Upper(arg string, reply *string) error {
	if arg == "" {
		return errors.New("rpcx: empty argument")
	}
	*reply = strings.ToUpper(arg)
	return nil
}

// Serve accepts JSON-RPC connections on l.
func Serve(l net.Listener) error {
	srv := rpc.NewServer()
	if err := srv.Register(Echo{}); err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go srv.ServeCodec(jsonrpc.NewServerCodec(c))
	}
}

// Feature calls Echo.Upper over an in-memory pipe.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	srv := rpc.NewServer()
	if err := srv.Register(Echo{}); err != nil {
		return nil, err
	}
	a, b := net.Pipe()
	go srv.ServeCodec(jsonrpc.NewServerCodec(a))
	client := jsonrpc.NewClient(b)
	defer client.Close()
	var reply string
	err := client.Call("Echo.Upper", string(in), &reply)
	return []byte(reply), err
}
