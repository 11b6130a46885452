// Command lambda_webhook_handler simulates a lambda that receives a payment
// provider webhook: it reads one JSON event from stdin and writes one JSON
// response to stdout.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"

	"example.com/monorepo/internal/payments"
)

// Event is the incoming webhook event.
type Event struct {
	Type    string           `json:"type"`
	Payment payments.Payment `json:"payment"`
}

// Response is what the handler returns.
type Response struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body"`
}

func handle(ev Event) Response {
	switch ev.Type {
	case "payment.created", "payment.settled", "payment.refunded":
	default:
		return Response{StatusCode: 400, Body: fmt.Sprintf("unknown event type %q", ev.Type)}
	}
	if err := ev.Payment.Validate(); err != nil {
		return Response{StatusCode: 422, Body: err.Error()}
	}
	return Response{StatusCode: 200, Body: "accepted " + ev.Type}
}

func main() {
	var ev Event
	if err := json.NewDecoder(os.Stdin).Decode(&ev); err != nil {
		log.Fatalf("lambda_webhook_handler: decode event: %v", err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(handle(ev)); err != nil {
		log.Fatalf("lambda_webhook_handler: encode response: %v", err)
	}
}
