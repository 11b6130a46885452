// Command cli_core is a small command-line client for the services.
//
// Usage:
//
//	cli_core version
//	cli_core ping [-timeout 5s] URL
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cli_core <command> [args]")
	fmt.Fprintln(os.Stderr, "commands:")
	fmt.Fprintln(os.Stderr, "  version        print module build info")
	fmt.Fprintln(os.Stderr, "  ping URL       GET URL and print the status")
}

func version() int {
	// Only what the toolchain embeds; nothing release-specific is linked in.
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Println("cli_core: no build info")
		return 1
	}
	fmt.Printf("%s %s (%s)\n", info.Main.Path, info.Main.Version, info.GoVersion)
	return 0
}

func ping(args []string) int {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cli_core ping [-timeout 5s] URL")
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	start := time.Now()
	resp, err := client.Get(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "ping: %v\n", err)
		return 1
	}
	resp.Body.Close()
	fmt.Printf("%s %s in %s\n", fs.Arg(0), resp.Status, time.Since(start).Round(time.Millisecond))
	if resp.StatusCode >= 400 {
		return 1
	}
	return 0
}

func main() {
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() < 1 {
		usage()
		os.Exit(2)
	}
	switch cmd, args := flag.Arg(0), flag.Args()[1:]; cmd {
	case "version":
		os.Exit(version())
	case "ping":
		os.Exit(ping(args))
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
}
