// Command ms_chat is the chat microservice: rooms and messages.
package main

import (
	"log"
	"net/http"
	"strconv"
	"sync"

	"example.com/monorepo/internal/config"
	"example.com/monorepo/internal/httpx"
)

// Message is one chat message in a room.
type Message struct {
	ID     int    `json:"id"`
	Author string `json:"author"`
	Text   string `json:"text"`
}

type room struct {
	Topic    string    `json:"topic"`
	Messages []Message `json:"messages"`
}

type server struct {
	mu     sync.Mutex
	nextID int
	rooms  map[string]*room
}

func (s *server) room(name string) *room {
	rm, ok := s.rooms[name]
	if !ok {
		rm = &room{Messages: []Message{}}
		s.rooms[name] = rm
	}
	return rm
}

// ListMessages returns the messages of a room.
// @Summary List room messages
// @Router /rooms/{room}/messages [get]
func (s *server) ListMessages(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	httpx.JSON(w, http.StatusOK, s.room(r.PathValue("room")).Messages)
}

// PostMessage appends a message to a room.
// @Summary Post a message
// @Router /rooms/{room}/messages [post]
func (s *server) PostMessage(w http.ResponseWriter, r *http.Request) {
	var m Message
	if err := httpx.Decode(r, &m); err != nil || m.Text == "" {
		httpx.Error(w, http.StatusBadRequest, "invalid message")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	m.ID = s.nextID
	rm := s.room(r.PathValue("room"))
	rm.Messages = append(rm.Messages, m)
	httpx.JSON(w, http.StatusCreated, m)
}

// SetTopic sets the topic of a room.
// @Summary Set the room topic
// @Router /rooms/{room}/topic [put]
func (s *server) SetTopic(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Topic string `json:"topic"`
	}
	if err := httpx.Decode(r, &in); err != nil {
		httpx.Error(w, http.StatusBadRequest, "invalid topic")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.room(r.PathValue("room"))
	rm.Topic = in.Topic
	httpx.JSON(w, http.StatusOK, rm)
}

// DeleteMessage removes one message from a room.
// @Summary Delete a message
// @Router /rooms/{room}/messages/{id} [delete]
func (s *server) DeleteMessage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		httpx.Error(w, http.StatusBadRequest, "invalid id")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.room(r.PathValue("room"))
	for i, m := range rm.Messages {
		if m.ID == id {
			rm.Messages = append(rm.Messages[:i], rm.Messages[i+1:]...)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	httpx.Error(w, http.StatusNotFound, "message not found")
}

func main() {
	cfg := config.Load()
	s := &server{rooms: map[string]*room{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rooms/{room}/messages", s.ListMessages)
	mux.HandleFunc("POST /rooms/{room}/messages", s.PostMessage)
	mux.HandleFunc("PUT /rooms/{room}/topic", s.SetTopic)
	mux.HandleFunc("DELETE /rooms/{room}/messages/{id}", s.DeleteMessage)
	log.Fatal(httpx.ListenAndServe("ms_chat", cfg.Addr(), mux))
}
