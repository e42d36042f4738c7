package rawio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/rawio"
)

// net/http's server and client work unchanged over raw connections:
// bodies both ways, keep-alive, a large response, CloseWrite.
func TestNetConn_HTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(append([]byte("echo:"), b...))
	})}
	go srv.Serve(rawio.Listen(ln))
	defer srv.Close()

	dials := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rc := rawio.WrapConn(c)
		if _, ok := rc.(*rawio.NetConn); !ok {
			t.Errorf("a TCP connection was not wrapped: %T", rc)
		}
		return rc, nil
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String()
	for i := range 50 {
		resp, err := c.Post(url+"/", "text/plain", strings.NewReader(strings.Repeat("p", i*1000)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "echo:"+strings.Repeat("p", i*1000) {
			t.Fatalf("request %d: %d bytes, %v", i, len(b), err)
		}
	}
	resp, err := c.Get(url + "/big")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("big response: %d bytes, %v", len(b), err)
	}
	if dials != 1 {
		t.Errorf("%d connections for 51 sequential requests, want 1 (keep-alive)", dials)
	}
}

// Deadlines are the wrapped connection's: a read past one fails with a
// timeout error, as net's would, and the connection still works after the
// deadline is cleared.
func TestNetConn_ReadDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		time.Sleep(200 * time.Millisecond)
		c.Write([]byte("late"))
		io.Copy(io.Discard, c)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := rawio.WrapConn(nc)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(make([]byte, 4))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout net.Error", err)
	}
	c.SetReadDeadline(time.Time{})
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
		t.Fatalf("read after clearing the deadline: %q, %v", buf, err)
	}
}

// A write to a peer that reset the connection is a *net.OpError, and a
// read of a closed peer is io.EOF.
func TestNetConn_ErrorShapes(t *testing.T) {
	nc, peer := tcpPair(t)
	c := rawio.WrapConn(nc)
	peer.Close()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read of a closed peer: %v, want io.EOF", err)
	}
	var oe *net.OpError
	if err := writeUntilError(t, c); !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write to a closed peer: %#v, want *net.OpError write", err)
	}
}
