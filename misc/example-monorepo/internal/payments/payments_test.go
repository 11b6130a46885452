package payments

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		p  Payment
		ok bool
	}{
		{Payment{Amount: 100, Currency: "EUR"}, true},
		{Payment{Amount: 0, Currency: "EUR"}, false},
		{Payment{Amount: 100, Currency: "EURO"}, false},
	}
	for _, c := range cases {
		if err := c.p.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c.p, err, c.ok)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	s := NewStore()
	p, err := s.Create(Payment{Amount: 250, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" || p.Status != StatusPending {
		t.Fatalf("created = %+v", p)
	}
	if _, err := s.Refund(p.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(p.ID)
	if err != nil || got.Status != StatusRefunded {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get("missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err = %v", err)
	}
	if n := len(s.List()); n != 1 {
		t.Fatalf("List len = %d", n)
	}
}
