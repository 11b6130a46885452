// Package tasks runs background jobs and external tools with timeouts.
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
	for i, line := range bytes.Split(in, []byte("\n")) {
		jobs[fmt.Sprintf("job%d", i)] = func(context.Context) error { _ = line; return nil }
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 1, ' ', 0)
	for _, r := range RunAll(ctx, jobs) {
		fmt.Fprintf(tw, "%s\t%s\t%v\n", r.Name, r.Took, r.Err)
	}
	err := tw.Flush()
	return buf.Bytes(), err
}
