// Package codegen formats and inspects Go source for the command-line tools.
package codegen

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
)

// Funcs lists the top-level functions of a Go file.
func Funcs(src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "input.go", src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok {
			out = append(out, fn.Name.Name)
		}
	}
	return out, nil
}

// Format is gofmt.
func Format(src []byte) ([]byte, error) {
	out, err := format.Source(src)
	return bytes.TrimSpace(out), err
}
