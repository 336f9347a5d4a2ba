// tlsecho: the Go side of weft's TLS echo benchmark (bench/compare_tls.sh).
// Standard library only (crypto/tls).
//
//	tlsecho server -addr 127.0.0.1:0 -cert cert.pem -key key.pem
//	    TLS echo server, one goroutine per connection; prints
//	    "listening on ADDR" once it accepts.
//	tlsecho load -addr ADDR -ca cert.pem -c 50 -size 64 -warmup 1s -dur 5s
//	    closed loop: c connections, each writes size bytes and reads them
//	    back, again and again; prints req_per_s, p50_us, p99_us.
//	tlsecho handshakes -addr ADDR -ca cert.pem -c 50 -warmup 1s -dur 5s
//	    c loops of: connect, full handshake (no resumption), one 64-byte
//	    echo, close_notify and close; prints handshakes_per_s.
//
// Output lines are "name value unit", like the other benchmark programs.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlsecho: "+format+"\n", args...)
	os.Exit(1)
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	certFile := fs.String("cert", "", "certificate chain (PEM)")
	keyFile := fs.String("key", "", "private key (PEM)")
	fs.Parse(args)
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		die("%v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := tls.Listen("tcp", *addr, cfg)
	if err != nil {
		die("%v", err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	for {
		c, err := ln.Accept()
		if err != nil {
			die("%v", err)
		}
		go func(c net.Conn) {
			defer c.Close()
			c.(*tls.Conn).NetConn().(*net.TCPConn).SetNoDelay(true)
			buf := make([]byte, 16*1024)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(c)
	}
}

func clientConfig(caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		die("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		die("no certificate in %s", caFile)
	}
	// No ClientSessionCache: every connection makes a full handshake.
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

type window struct {
	measuring atomic.Bool
	stop      atomic.Bool
}

// run starts c workers, lets them warm up, measures for dur and stops them.
func (w *window) run(c int, warmup, dur time.Duration, worker func(id int)) time.Duration {
	var wg sync.WaitGroup
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func(id int) { defer wg.Done(); worker(id) }(i)
	}
	time.Sleep(warmup)
	t0 := time.Now()
	w.measuring.Store(true)
	time.Sleep(dur)
	w.measuring.Store(false)
	elapsed := time.Since(t0)
	w.stop.Store(true)
	wg.Wait()
	return elapsed
}

// The flags both client modes take.
type clientFlags struct {
	fs          *flag.FlagSet
	addr, ca    *string
	c           *int
	warmup, dur *time.Duration
}

func newClientFlags(mode string) clientFlags {
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	return clientFlags{fs, fs.String("addr", "", "server address"),
		fs.String("ca", "", "CA certificate (PEM)"), fs.Int("c", 50, "concurrent connections"),
		fs.Duration("warmup", time.Second, "warm-up time"),
		fs.Duration("dur", 5*time.Second, "measured time")}
}

func load(args []string) {
	f := newClientFlags("load")
	size := f.fs.Int("size", 64, "message bytes")
	f.fs.Parse(args)
	addr, c, cfg := f.addr, f.c, clientConfig(*f.ca)
	var w window
	lat := make([][]time.Duration, *c)
	var cipher atomic.Value
	elapsed := w.run(*c, *f.warmup, *f.dur, func(id int) {
		conn, err := tls.Dial("tcp", *addr, cfg)
		if err != nil {
			die("dial: %v", err)
		}
		defer conn.Close()
		conn.NetConn().(*net.TCPConn).SetNoDelay(true)
		st := conn.ConnectionState()
		cipher.Store(tls.CipherSuiteName(st.CipherSuite))
		msg := make([]byte, *size)
		for i := range msg {
			msg[i] = byte('a' + (i+id)%26)
		}
		back := make([]byte, *size)
		for !w.stop.Load() {
			t := time.Now()
			if _, err := conn.Write(msg); err != nil {
				die("write: %v", err)
			}
			if _, err := io.ReadFull(conn, back); err != nil {
				die("read: %v", err)
			}
			if w.measuring.Load() {
				lat[id] = append(lat[id], time.Since(t))
			}
		}
		for i := range msg {
			if back[i] != msg[i] {
				die("echo mismatch")
			}
		}
	})
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		die("no request completed in the measured window")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	fmt.Printf("# cipher %v\n", cipher.Load())
	fmt.Printf("req_per_s %.1f req/s\n", float64(len(all))/elapsed.Seconds())
	fmt.Printf("p50_us %.1f us\n", float64(all[len(all)/2].Nanoseconds())/1e3)
	fmt.Printf("p99_us %.1f us\n", float64(all[len(all)*99/100].Nanoseconds())/1e3)
}

func handshakes(args []string) {
	f := newClientFlags("handshakes")
	f.fs.Parse(args)
	addr, c, cfg := f.addr, f.c, clientConfig(*f.ca)
	var w window
	var done atomic.Int64
	msg := []byte("0123456789012345678901234567890123456789012345678901234567890123")
	elapsed := w.run(*c, *f.warmup, *f.dur, func(id int) {
		back := make([]byte, len(msg))
		for !w.stop.Load() {
			conn, err := tls.Dial("tcp", *addr, cfg)
			if err != nil {
				die("dial: %v", err)
			}
			if _, err := conn.Write(msg); err != nil {
				die("write: %v", err)
			}
			if _, err := io.ReadFull(conn, back); err != nil {
				die("read: %v", err)
			}
			conn.Close() // sends close_notify
			if w.measuring.Load() {
				done.Add(1)
			}
		}
	})
	fmt.Printf("handshakes_per_s %.1f handshakes/s\n", float64(done.Load())/elapsed.Seconds())
}

func main() {
	if len(os.Args) < 2 {
		die("usage: tlsecho server|load|handshakes [flags]")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "load":
		load(os.Args[2:])
	case "handshakes":
		handshakes(os.Args[2:])
	default:
		die("unknown mode %q", os.Args[1])
	}
}
