// Package render turns records into HTML pages and text reports.
package render

import (
	"bytes"
	"context"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

var page = htmltemplate.Must(htmltemplate.New("page").Parse(
	`<html><head><title>{{.Title}}</title></head><body><ul>{{range .Rows}}<li>{{.}}</li>{{end}}</ul></body></html>`))

var report = texttemplate.Must(texttemplate.New("report").Funcs(texttemplate.FuncMap{"upper": strings.ToUpper}).Parse(
	"{{upper .Title}}\n{{range .Rows}}- {{.}}\n{{end}}"))

// Page renders an HTML page with one list item per row.
func Page(title string, rows []string) ([]byte, error) {
	var buf bytes.Buffer
	err := page.Execute(&buf, map[string]any{"Title": title, "Rows": rows})
	return buf.Bytes(), err
}

// Feature renders the input's lines as a text report.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	var buf bytes.Buffer
	err := report.Execute(&buf, map[string]any{"Title": "report", "Rows": strings.Split(string(in), "\n")})
	return buf.Bytes(), err
}
