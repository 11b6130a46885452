// Package config loads service settings from the environment.
package config

import (
	"flag"
	"os"
	"strconv"
	"time"
)

// Config holds the settings shared by the services.
type Config struct {
	Port    int
	DSN     string
	Secret  string
	Timeout time.Duration
}

// Addr is the listen address of the configured port.
func (c Config) Addr() string { return ":" + strconv.Itoa(c.Port) }

// Load reads flags first, then the environment.
func Load(name string) Config {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	port := fs.Int("port", 8080, "listen port")
	_ = fs.Parse(nil)
	cfg := Config{Port: *port, DSN: name, Secret: os.Getenv("SECRET"), Timeout: 15 * time.Second}
	if v, err := strconv.Atoi(os.Getenv("PORT")); err == nil && v > 0 && v < 65536 {
		cfg.Port = v
	}
	if d, err := time.ParseDuration(os.Getenv("TIMEOUT")); err == nil {
		cfg.Timeout = d
	}
	return cfg
}
