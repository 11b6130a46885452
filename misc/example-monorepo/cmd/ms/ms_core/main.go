// Command ms_core is the core microservice: health check and users.
package main

import (
	"log"
	"net/http"
	"sync"

	"example.com/monorepo/internal/config"
	"example.com/monorepo/internal/httpx"
)

// User is a registered user.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type server struct {
	mu    sync.Mutex
	users map[string]User
}

// Healthz reports that the service is up.
// @Summary Health check
// @Router /healthz [get]
func (s *server) Healthz(w http.ResponseWriter, r *http.Request) {
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// GetUser returns one user.
// @Summary Get a user
// @Router /users/{id} [get]
func (s *server) GetUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		httpx.Error(w, http.StatusNotFound, "user not found")
		return
	}
	httpx.JSON(w, http.StatusOK, u)
}

// CreateUser registers a new user.
// @Summary Create a user
// @Router /users [post]
func (s *server) CreateUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := httpx.Decode(r, &u); err != nil || u.ID == "" {
		httpx.Error(w, http.StatusBadRequest, "invalid user")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.users[u.ID]; exists {
		httpx.Error(w, http.StatusConflict, "user exists")
		return
	}
	s.users[u.ID] = u
	httpx.JSON(w, http.StatusCreated, u)
}

// UpdateUser replaces the name and email of a user.
// @Summary Update a user
// @Router /users/{id} [put]
func (s *server) UpdateUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := httpx.Decode(r, &u); err != nil {
		httpx.Error(w, http.StatusBadRequest, "invalid user")
		return
	}
	u.ID = r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; !ok {
		httpx.Error(w, http.StatusNotFound, "user not found")
		return
	}
	s.users[u.ID] = u
	httpx.JSON(w, http.StatusOK, u)
}

func main() {
	cfg := config.Load()
	s := &server{users: map[string]User{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.Healthz)
	mux.HandleFunc("GET /users/{id}", s.GetUser)
	mux.HandleFunc("POST /users", s.CreateUser)
	mux.HandleFunc("PUT /users/{id}", s.UpdateUser)
	log.Fatal(httpx.ListenAndServe("ms_core", cfg.Addr(), mux))
}
