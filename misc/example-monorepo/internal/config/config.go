// Package config loads service settings from the environment.
package config

import (
	"os"
	"strconv"
)

// Config holds the settings shared by the services.
type Config struct {
	// Port is the TCP port HTTP services listen on ($PORT, default 8080).
	Port int
	// LogLevel is a free-form log level ($LOG_LEVEL, default "info").
	LogLevel string
}

// Addr returns the listen address for the configured port.
func (c Config) Addr() string {
	return ":" + strconv.Itoa(c.Port)
}

// Load reads the configuration from the process environment.
func Load() Config {
	return FromLookup(os.LookupEnv)
}

// FromLookup reads the configuration through lookup, which has the
// signature of os.LookupEnv. Invalid or missing values fall back to defaults.
func FromLookup(lookup func(string) (string, bool)) Config {
	cfg := Config{Port: 8080, LogLevel: "info"}
	if v, ok := lookup("PORT"); ok {
		if p, err := strconv.Atoi(v); err == nil && p > 0 && p < 65536 {
			cfg.Port = p
		}
	}
	if v, ok := lookup("LOG_LEVEL"); ok && v != "" {
		cfg.LogLevel = v
	}
	return cfg
}

// Get returns the environment variable key, or def when it is unset or empty.
func Get(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
