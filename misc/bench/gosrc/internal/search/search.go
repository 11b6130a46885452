// Package search is a small in-memory full-text index.
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

var word = regexp.MustCompile(`[\p{L}\p{N}]+`)

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
	return out
}

// Terms lists the indexed terms in order.
func (ix *Index) Terms() []string {
	out := make([]string, 0, len(ix.terms))
	for t := range ix.terms {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Feature indexes the input's lines and queries the first one.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	ix := New()
	lines := strings.Split(string(in), "\n")
	for _, l := range lines {
		ix.Add(l)
	}
	return []byte(strings.Join(ix.Query(lines[0], 5), "\n")), nil
}
