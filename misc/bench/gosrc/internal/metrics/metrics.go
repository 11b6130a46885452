// Package metrics exposes expvar counters and pprof on a service's mux.
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
