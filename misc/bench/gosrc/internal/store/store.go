// Package store is the services' persistence, spoken through database/sql.
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
