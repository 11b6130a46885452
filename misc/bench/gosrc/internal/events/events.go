// Package events encodes domain events for the bus, the audit log and exports.
package events

import (
	"bytes"
	"encoding/csv"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"time"
)

// Event is one domain event.
type Event struct {
	XMLName xml.Name          `json:"-" xml:"event"`
	Kind    string            `json:"kind" xml:"kind,attr"`
	Subject string            `json:"subject" xml:"subject"`
	At      time.Time         `json:"at" xml:"at"`
	Data    map[string]string `json:"data" xml:"-"`
}

// Encode renders ev as json, xml, csv or gob.
func Encode(ev Event, format string) ([]byte, error) {
	var buf bytes.Buffer
	switch format {
	case "json":
		err := json.NewEncoder(&buf).Encode(ev)
		return buf.Bytes(), err
	case "xml":
		err := xml.NewEncoder(&buf).Encode(ev)
		return buf.Bytes(), err
	case "csv":
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{ev.Kind, ev.Subject, ev.At.Format(time.RFC3339)})
		w.Flush()
		return buf.Bytes(), w.Error()
	case "gob":
		err := gob.NewEncoder(&buf).Encode(ev)
		return buf.Bytes(), err
	}
	return nil, fmt.Errorf("events: unknown format %q", format)
}
