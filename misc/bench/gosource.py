"""Go source of the synthetic monorepo's shared `internal/` packages (stdlib only).

Each package stands for a typical shared library of a real monorepo and pulls in a slice of the
standard library the way vendored dependencies do (HTTP, JSON, SQL, crypto, templates,
compression, images, mail, RPC, profiling), so a cold build compiles most of the standard library
for the target platform, as a real cold release does. Every optional package exposes one
`Feature(ctx, in) (out, error)` so a generated service can wire any of them the same way.
"""

MODULE = "example.com/benchrepo"

CONFIG = """// Package config loads service settings from the environment.
package config

import (
	"flag"
	"os"
	"strconv"
	"time"
)

// Config holds the settings shared by the services.
type Config struct {
	Port    int
	DSN     string
	Secret  string
	Timeout time.Duration
}

// Addr is the listen address of the configured port.
func (c Config) Addr() string { return ":" + strconv.Itoa(c.Port) }

// Load reads flags first, then the environment.
func Load(name string) Config {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	port := fs.Int("port", 8080, "listen port")
	_ = fs.Parse(nil)
	cfg := Config{Port: *port, DSN: name, Secret: os.Getenv("SECRET"), Timeout: 15 * time.Second}
	if v, err := strconv.Atoi(os.Getenv("PORT")); err == nil && v > 0 && v < 65536 {
		cfg.Port = v
	}
	if d, err := time.ParseDuration(os.Getenv("TIMEOUT")); err == nil {
		cfg.Timeout = d
	}
	return cfg
}
"""

HTTPX = """// Package httpx holds the HTTP plumbing shared by the microservices.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// JSON writes v as a JSON response with the given status code.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Error("encode response", "err", err)
	}
}

// Error writes {"error": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	JSON(w, status, map[string]string{"error": msg})
}

// Decode reads a JSON body into v, rejecting unknown fields.
func Decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Serve runs handler on addr until SIGTERM, then shuts down gracefully.
func Serve(name, addr string, handler http.Handler) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", name)
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			handler.ServeHTTP(w, r)
			log.Info("request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
		})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
"""

STORE = """// Package store is the services' persistence, spoken through database/sql.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

type memDriver struct {
	mu   sync.Mutex
	data map[string]map[string]string
}

type conn struct {
	d    *memDriver
	name string
}

type stmt struct {
	c     *conn
	query string
}

type rows struct {
	vals []string
	pos  int
}

func (d *memDriver) Open(name string) (driver.Conn, error) { return &conn{d: d, name: name}, nil }
func (c *conn) Prepare(q string) (driver.Stmt, error)     { return &stmt{c: c, query: q}, nil }
func (c *conn) Close() error                              { return nil }
func (c *conn) Begin() (driver.Tx, error)                 { return nil, errors.New("store: no transactions") }
func (s *stmt) Close() error                              { return nil }
func (s *stmt) NumInput() int                             { return strings.Count(s.query, "?") }
func (r *rows) Columns() []string                         { return []string{"value"} }
func (r *rows) Close() error                              { return nil }

func (r *rows) Next(dest []driver.Value) error {
	if r.pos >= len(r.vals) {
		return io.EOF
	}
	dest[0] = r.vals[r.pos]
	r.pos++
	return nil
}

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	if !strings.HasPrefix(s.query, "PUT") || len(args) != 2 {
		return nil, fmt.Errorf("store: unsupported statement %q", s.query)
	}
	s.c.d.mu.Lock()
	defer s.c.d.mu.Unlock()
	table := s.c.d.data[s.c.name]
	if table == nil {
		table = map[string]string{}
		s.c.d.data[s.c.name] = table
	}
	table[fmt.Sprint(args[0])] = fmt.Sprint(args[1])
	return driver.RowsAffected(1), nil
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	s.c.d.mu.Lock()
	defer s.c.d.mu.Unlock()
	v, ok := s.c.d.data[s.c.name][fmt.Sprint(args[0])]
	if !ok {
		return &rows{}, nil
	}
	return &rows{vals: []string{v}}, nil
}

func init() { sql.Register("memkv", &memDriver{data: map[string]map[string]string{}}) }

// Store is one service's key-value table.
type Store struct{ db *sql.DB }

// Open connects to the named table.
func Open(name string) (*Store, error) {
	db, err := sql.Open("memkv", name)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Put stores value under key.
func (s *Store) Put(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, "PUT ? ?", key, value)
	return err
}

// Get returns the value under key, or sql.ErrNoRows.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "GET ?", key).Scan(&v)
	return v, err
}
"""

EVENTS = """// Package events encodes domain events for the bus, the audit log and exports.
package events

import (
	"bytes"
	"encoding/csv"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"time"
)

// Event is one domain event.
type Event struct {
	XMLName xml.Name          `json:"-" xml:"event"`
	Kind    string            `json:"kind" xml:"kind,attr"`
	Subject string            `json:"subject" xml:"subject"`
	At      time.Time         `json:"at" xml:"at"`
	Data    map[string]string `json:"data" xml:"-"`
}

// Encode renders ev as json, xml, csv or gob.
func Encode(ev Event, format string) ([]byte, error) {
	var buf bytes.Buffer
	switch format {
	case "json":
		err := json.NewEncoder(&buf).Encode(ev)
		return buf.Bytes(), err
	case "xml":
		err := xml.NewEncoder(&buf).Encode(ev)
		return buf.Bytes(), err
	case "csv":
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{ev.Kind, ev.Subject, ev.At.Format(time.RFC3339)})
		w.Flush()
		return buf.Bytes(), w.Error()
	case "gob":
		err := gob.NewEncoder(&buf).Encode(ev)
		return buf.Bytes(), err
	}
	return nil, fmt.Errorf("events: unknown format %q", format)
}
"""

# Optional packages: name -> source. Each has Feature(ctx, in) ([]byte, error).
OPTIONAL = {
    "cryptox": """// Package cryptox signs, seals and serves TLS for the services.
package cryptox

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"time"
)

// Sign is the hex HMAC-SHA256 of msg.
func Sign(secret, msg []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(msg)
	return hex.EncodeToString(mac.Sum(nil))
}

// Seal encrypts plaintext with AES-GCM under a key derived from secret.
func Seal(secret, plaintext []byte) ([]byte, error) {
	key := sha256.Sum256(secret)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plaintext, nil), nil
}

// SelfSignedTLS is a server config with a fresh ECDSA certificate for host.
func SelfSignedTLS(host string) (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, pemBytes, nil
}

// Feature signs the input with a fresh ed25519 key and returns the signature.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(ed25519.Sign(priv, in))), nil
}
""",
    "render": """// Package render turns records into HTML pages and text reports.
package render

import (
	"bytes"
	"context"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

var page = htmltemplate.Must(htmltemplate.New("page").Parse(
	`<html><head><title>{{.Title}}</title></head><body><ul>{{range .Rows}}<li>{{.}}</li>{{end}}</ul></body></html>`))

var report = texttemplate.Must(texttemplate.New("report").Funcs(texttemplate.FuncMap{"upper": strings.ToUpper}).Parse(
	"{{upper .Title}}\\n{{range .Rows}}- {{.}}\\n{{end}}"))

// Page renders an HTML page with one list item per row.
func Page(title string, rows []string) ([]byte, error) {
	var buf bytes.Buffer
	err := page.Execute(&buf, map[string]any{"Title": title, "Rows": rows})
	return buf.Bytes(), err
}

// Feature renders the input's lines as a text report.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	var buf bytes.Buffer
	err := report.Execute(&buf, map[string]any{"Title": "report", "Rows": strings.Split(string(in), "\\n")})
	return buf.Bytes(), err
}
""",
    "archive": """// Package archive bundles exports as zip, tar.gz or zlib streams.
package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"io"
	"time"
)

// Zip bundles files into a zip archive.
func Zip(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	err := zw.Close()
	return buf.Bytes(), err
}

// TarGz bundles files into a gzip-compressed tar stream.
func TarGz(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	err := gz.Close()
	return buf.Bytes(), err
}

// Feature round-trips the input through zlib and returns the compressed bytes.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(in); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	zr, err := zlib.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
""",
    "media": """// Package media makes thumbnails and placeholders in PNG, JPEG and GIF.
package media

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
)

// Placeholder is a w×h gradient image.
func Placeholder(w, h int, seed byte) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{R: byte(x) + seed, G: byte(y), B: seed, A: 255})
		}
	}
	return img
}

// Encode renders img as png, jpeg or gif.
func Encode(img image.Image, format string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	default:
		err = fmt.Errorf("media: unknown format %q", format)
	}
	return buf.Bytes(), err
}

// Feature returns a PNG placeholder seeded by the input's length.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	return Encode(Placeholder(32, 32, byte(len(in))), "png")
}
""",
    "mailer": """// Package mailer composes and sends the services' notification mails.
package mailer

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/smtp"
	"net/textproto"
)

// Compose builds a multipart message with a text part.
func Compose(from, to, subject string, body []byte) ([]byte, error) {
	if _, err := mail.ParseAddress(to); err != nil {
		return nil, fmt.Errorf("mailer: bad recipient %q: %w", to, err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fmt.Fprintf(&buf, "From: %s\\r\\nTo: %s\\r\\nSubject: %s\\r\\nMIME-Version: 1.0\\r\\n", from, to,
		mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&buf, "Content-Type: multipart/mixed; boundary=%s\\r\\n\\r\\n", mw.Boundary())
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	if err != nil {
		return nil, err
	}
	if _, err := part.Write(body); err != nil {
		return nil, err
	}
	err = mw.Close()
	return buf.Bytes(), err
}

// Send delivers msg through the SMTP relay at addr.
func Send(addr, from string, to []string, msg []byte) error {
	return smtp.SendMail(addr, nil, from, to, msg)
}

// Feature composes a mail whose body is the input.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	return Compose("noreply@example.com", "ops@example.com", "notification", in)
}
""",
    "metrics": """// Package metrics exposes expvar counters and pprof on a service's mux.
package metrics

import (
	"context"
	"encoding/json"
	"expvar"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

var requests atomic.Int64

// Register adds /debug/vars and /debug/pprof/ to mux.
func Register(mux *http.ServeMux) {
	mux.Handle("GET /debug/vars", expvar.Handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
}

// Feature reports runtime statistics as JSON.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	requests.Add(1)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var gc debug.GCStats
	debug.ReadGCStats(&gc)
	return json.Marshal(map[string]any{"requests": requests.Load(), "heap": m.HeapAlloc,
		"goroutines": runtime.NumGoroutine(), "gcs": gc.NumGC})
}
""",
    "search": """// Package search is a small in-memory full-text index.
package search

import (
	"container/heap"
	"context"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

var word = regexp.MustCompile(`[\\p{L}\\p{N}]+`)

// Index maps terms to documents.
type Index struct {
	docs  []string
	terms map[string][]int
}

// New is an empty index.
func New() *Index { return &Index{terms: map[string][]int{}} }

// Add indexes doc.
func (ix *Index) Add(doc string) {
	id := len(ix.docs)
	ix.docs = append(ix.docs, doc)
	for _, t := range word.FindAllString(strings.ToLower(doc), -1) {
		if len(t) > 1 && !unicode.IsDigit(rune(t[0])) {
			ix.terms[t] = append(ix.terms[t], id)
		}
	}
}

type hit struct {
	doc   int
	score float64
}
type hits []hit

func (h hits) Len() int           { return len(h) }
func (h hits) Less(i, j int) bool { return h[i].score > h[j].score }
func (h hits) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hits) Push(x any)        { *h = append(*h, x.(hit)) }
func (h *hits) Pop() any          { old := *h; x := old[len(old)-1]; *h = old[:len(old)-1]; return x }

// Query returns the documents best matching q, best first.
func (ix *Index) Query(q string, limit int) []string {
	scores := map[int]float64{}
	for _, t := range word.FindAllString(strings.ToLower(q), -1) {
		posting := ix.terms[t]
		idf := math.Log(1 + float64(len(ix.docs))/float64(1+len(posting)))
		for _, d := range posting {
			scores[d] += idf
		}
	}
	h := &hits{}
	for d, s := range scores {
		heap.Push(h, hit{d, s})
	}
	var out []string
	for h.Len() > 0 && len(out) < limit {
		out = append(out, ix.docs[heap.Pop(h).(hit).doc])
	}
	sort.Stable(sort.StringSlice(out[:0]))
	return out
}

// Feature indexes the input's lines and queries the first one.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	ix := New()
	lines := strings.Split(string(in), "\\n")
	for _, l := range lines {
		ix.Add(l)
	}
	return []byte(strings.Join(ix.Query(lines[0], 5), "\\n")), nil
}
""",
    "rpcx": """// Package rpcx serves internal RPC between services (net/rpc with JSON-RPC codec).
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
""",
    "tasks": """// Package tasks runs background jobs and external tools with timeouts.
package tasks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is one finished job.
type Result struct {
	Name string
	Took time.Duration
	Err  error
}

// RunAll runs jobs concurrently and returns their results in order.
func RunAll(ctx context.Context, jobs map[string]func(context.Context) error) []Result {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var out []Result
	for name, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := job(ctx)
			mu.Lock()
			out = append(out, Result{name, time.Since(start), err})
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Tool runs an external program and returns its first output line.
func Tool(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Scan()
	return sc.Text(), nil
}

// Feature runs one job per input line and reports them as a table.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	jobs := map[string]func(context.Context) error{}
	for i, line := range bytes.Split(in, []byte("\\n")) {
		jobs[fmt.Sprintf("job%d", i)] = func(context.Context) error { _ = line; return nil }
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 1, ' ', 0)
	for _, r := range RunAll(ctx, jobs) {
		fmt.Fprintf(tw, "%s\\t%s\\t%v\\n", r.Name, r.Took, r.Err)
	}
	err := tw.Flush()
	return buf.Bytes(), err
}
""",
}

CODEGEN = """// Package codegen formats and inspects Go source for the command-line tools.
package codegen

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
)

// Funcs lists the top-level functions of a Go file.
func Funcs(src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "input.go", src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok {
			out = append(out, fn.Name.Name)
		}
	}
	return out, nil
}

// Format is gofmt.
func Format(src []byte) ([]byte, error) {
	out, err := format.Source(src)
	return bytes.TrimSpace(out), err
}
"""
