// Command lambda_auth_handler simulates an API gateway authorizer lambda: it
// reads one JSON event from stdin and writes an allow/deny decision to stdout.
package main

import (
	"crypto/subtle"
	"encoding/json"
	"log"
	"os"
	"strings"

	"example.com/monorepo/internal/config"
)

// Event is the authorizer request.
type Event struct {
	AuthorizationToken string `json:"authorizationToken"`
	MethodArn          string `json:"methodArn"`
}

// Response is the authorizer decision.
type Response struct {
	PrincipalID string `json:"principalId"`
	Effect      string `json:"effect"`
	Resource    string `json:"resource"`
}

func handle(ev Event, secret string) Response {
	token := strings.TrimPrefix(ev.AuthorizationToken, "Bearer ")
	effect := "Deny"
	if secret != "" && subtle.ConstantTimeCompare([]byte(token), []byte(secret)) == 1 {
		effect = "Allow"
	}
	return Response{PrincipalID: "user", Effect: effect, Resource: ev.MethodArn}
}

func main() {
	var ev Event
	if err := json.NewDecoder(os.Stdin).Decode(&ev); err != nil {
		log.Fatalf("lambda_auth_handler: decode event: %v", err)
	}
	resp := handle(ev, config.Get("AUTH_TOKEN", ""))
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		log.Fatalf("lambda_auth_handler: encode response: %v", err)
	}
}
