package config

import "testing"

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestFromLookupDefaults(t *testing.T) {
	cfg := FromLookup(lookupFrom(nil))
	if cfg.Port != 8080 || cfg.LogLevel != "info" {
		t.Fatalf("defaults = %+v", cfg)
	}
	if cfg.Addr() != ":8080" {
		t.Fatalf("Addr() = %q", cfg.Addr())
	}
}

func TestFromLookupOverrides(t *testing.T) {
	cfg := FromLookup(lookupFrom(map[string]string{"PORT": "9090", "LOG_LEVEL": "debug"}))
	if cfg.Port != 9090 || cfg.LogLevel != "debug" {
		t.Fatalf("overrides = %+v", cfg)
	}
}

func TestFromLookupInvalidPort(t *testing.T) {
	for _, p := range []string{"", "abc", "0", "70000", "-1"} {
		cfg := FromLookup(lookupFrom(map[string]string{"PORT": p}))
		if cfg.Port != 8080 {
			t.Errorf("PORT=%q: got %d, want 8080", p, cfg.Port)
		}
	}
}
