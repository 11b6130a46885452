// Command ms_payments is the payments microservice.
package main

import (
	"errors"
	"log"
	"net/http"

	"example.com/monorepo/internal/config"
	"example.com/monorepo/internal/httpx"
	"example.com/monorepo/internal/payments"
)

type server struct {
	store *payments.Store
}

// ListPayments returns all payments.
// @Summary List payments
// @Router /payments [get]
func (s *server) ListPayments(w http.ResponseWriter, r *http.Request) {
	httpx.JSON(w, http.StatusOK, s.store.List())
}

// GetPayment returns one payment.
// @Summary Get a payment
// @Router /payments/{id} [get]
func (s *server) GetPayment(w http.ResponseWriter, r *http.Request) {
	p, err := s.store.Get(r.PathValue("id"))
	if errors.Is(err, payments.ErrNotFound) {
		httpx.Error(w, http.StatusNotFound, err.Error())
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

// CreatePayment records a new pending payment.
// @Summary Create a payment
// @Router /payments [post]
func (s *server) CreatePayment(w http.ResponseWriter, r *http.Request) {
	var in payments.Payment
	if err := httpx.Decode(r, &in); err != nil {
		httpx.Error(w, http.StatusBadRequest, "invalid payment")
		return
	}
	p, err := s.store.Create(in)
	if err != nil {
		httpx.Error(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	httpx.JSON(w, http.StatusCreated, p)
}

// RefundPayment cancels a payment by refunding it.
// @Summary Refund a payment
// @Router /payments/{id} [delete]
func (s *server) RefundPayment(w http.ResponseWriter, r *http.Request) {
	p, err := s.store.Refund(r.PathValue("id"))
	if errors.Is(err, payments.ErrNotFound) {
		httpx.Error(w, http.StatusNotFound, err.Error())
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func main() {
	cfg := config.Load()
	s := &server{store: payments.NewStore()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /payments", s.ListPayments)
	mux.HandleFunc("GET /payments/{id}", s.GetPayment)
	mux.HandleFunc("POST /payments", s.CreatePayment)
	mux.HandleFunc("DELETE /payments/{id}", s.RefundPayment)
	log.Fatal(httpx.ListenAndServe("ms_payments", cfg.Addr(), mux))
}
