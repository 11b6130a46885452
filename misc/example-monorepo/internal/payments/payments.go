// Package payments is a tiny payment domain shared by services.
package payments

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Status is the lifecycle state of a payment.
type Status string

// Payment states.
const (
	StatusPending  Status = "pending"
	StatusSettled  Status = "settled"
	StatusRefunded Status = "refunded"
)

// Payment is an amount in minor units (cents) of a currency.
type Payment struct {
	ID       string `json:"id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   Status `json:"status"`
}

// ErrNotFound is returned when a payment id is unknown.
var ErrNotFound = errors.New("payment not found")

// Validate checks that the amount is positive and the currency a 3-letter code.
func (p Payment) Validate() error {
	if p.Amount <= 0 {
		return fmt.Errorf("amount must be positive, got %d", p.Amount)
	}
	if len(p.Currency) != 3 {
		return fmt.Errorf("currency must be a 3-letter code, got %q", p.Currency)
	}
	return nil
}

// Store is an in-memory, concurrency-safe payment store.
type Store struct {
	mu   sync.Mutex
	next int
	byID map[string]Payment
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{byID: map[string]Payment{}}
}

// Create validates p, assigns an id and pending status, and stores it.
func (s *Store) Create(p Payment) (Payment, error) {
	if err := p.Validate(); err != nil {
		return Payment{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	p.ID = fmt.Sprintf("pay_%d", s.next)
	p.Status = StatusPending
	s.byID[p.ID] = p
	return p, nil
}

// Get returns the payment with the given id.
func (s *Store) Get(id string) (Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byID[id]
	if !ok {
		return Payment{}, ErrNotFound
	}
	return p, nil
}

// List returns all payments ordered by id.
func (s *Store) List() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Payment, 0, len(s.byID))
	for _, p := range s.byID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Refund marks the payment as refunded.
func (s *Store) Refund(id string) (Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byID[id]
	if !ok {
		return Payment{}, ErrNotFound
	}
	p.Status = StatusRefunded
	s.byID[id] = p
	return p, nil
}
