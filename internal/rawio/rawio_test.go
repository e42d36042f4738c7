package rawio_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/rawio"
)

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// A write larger than the pipe's buffer waits in the poller for the reader
// and arrives whole and in order; the reader sees EOF once the writer is
// closed.
func TestConn_PipeLargeWriteAndEOF(t *testing.T) {
	r, w := pipe(t)
	rc, wc := rawio.File(r), rawio.File(w)
	if rc == nil || wc == nil {
		t.Fatal("os.Pipe files expose no descriptor")
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB, 16× a pipe buffer
	errc := make(chan error, 1)
	go func() {
		n, err := wc.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		w.Close()
		errc <- err
	}()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d identical", len(got), len(want))
	}
}

// A read parked in the poller returns when the file is closed under it.
func TestConn_CloseWakesReader(t *testing.T) {
	r, _ := pipe(t)
	rc := rawio.File(r)
	errc := make(chan error, 1)
	go func() {
		_, err := rc.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	select {
	case err := <-errc:
		// The poller's "use of closed file" (os.File maps it to
		// os.ErrClosed; a raw read sees it as is).
		if err == nil || err == io.EOF {
			t.Fatalf("Read after Close: %v, want the poller's closed-file error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

// Writing to a pipe whose reader is gone fails with EPIPE instead of
// killing the process with SIGPIPE.
func TestConn_PipeWriteAfterReaderClosed(t *testing.T) {
	r, w := pipe(t)
	wc := rawio.File(w)
	r.Close()
	_, err := wc.Write([]byte("x"))
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write: %v, want EPIPE", err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// writeUntilError writes to w, whose peer is gone, until a write fails:
// the first may still succeed (it draws the peer's RST).
func writeUntilError(t *testing.T, w io.Writer) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := w.Write([]byte("late")); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed peer kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}
}

// Sockets go through send(2) with MSG_NOSIGNAL: round trip, then EPIPE
// (or ECONNRESET) and no signal once the peer is gone.
func TestConn_Socket(t *testing.T) {
	client, server := tcpPair(t)
	sc := rawio.NewConn(server.(*net.TCPConn), "server")
	if sc == nil {
		t.Fatal("TCP conn exposes no descriptor")
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := sc.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	client.Close()
	if err := writeUntilError(t, sc); !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Write to a closed peer: %v, want EPIPE or ECONNRESET", err)
	}
}

// Pair's two ends carry data both ways of one pipe.
func TestPair(t *testing.T) {
	r, w := pipe(t)
	rw := rawio.Pair(r, w)
	if _, err := rw.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(rw, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// BenchmarkPipeRoundTrip is a 100-byte ping-pong between two goroutines
// over pipes, raw and through os.File. Both ends live in one busy process,
// so it shows the calls' own cost (and that rawio allocates nothing), not
// the sysmon wake-ups rawio avoids between processes that idle.
func BenchmarkPipeRoundTrip(b *testing.B) {
	b.Run("rawio", func(b *testing.B) {
		pingPong(b, func(r, w *os.File) io.ReadWriter { return rawio.Pair(r, w) })
	})
	b.Run("os.File", func(b *testing.B) {
		pingPong(b, func(r, w *os.File) io.ReadWriter {
			return struct {
				io.Reader
				io.Writer
			}{r, w}
		})
	})
}

func pingPong(b *testing.B, wrap func(r, w *os.File) io.ReadWriter) {
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	defer func() { r1.Close(); w1.Close(); r2.Close(); w2.Close() }()
	a, bb := wrap(r1, w2), wrap(r2, w1)
	go func() {
		buf := make([]byte, 128)
		for {
			n, err := bb.Read(buf)
			if err != nil {
				return
			}
			if _, err := bb.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 100), make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf[:len(msg)]); err != nil {
			b.Fatal(err)
		}
	}
}

// A descriptor in blocking mode that the poller does not know is made
// non-blocking: a read with nothing to read fails at once instead of
// waiting in the kernel while holding a P.
func TestConn_BlockingDescriptorNeverBlocks(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	defer r.Close()
	defer w.Close()
	c := rawio.File(r)
	if c == nil {
		t.Fatal("no Conn for a pipe")
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read of an empty pipe succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read of an empty blocking pipe blocked")
	}
}
