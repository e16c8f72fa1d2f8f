// Command probe is an HTTP client for pods of the test cluster: it GETs
// each URL, with the bearer token of -token-file when that file exists
// (a pod's ServiceAccount token), and prints one line per URL:
// "<status code> <url>", or "error <url>: <reason>".
//
//	probe [-token-file F] URL...
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	tokenFile := flag.String("token-file", "/var/run/secrets/kubernetes.io/serviceaccount/token", "bearer token, sent when the file exists")
	flag.Parse()
	token := ""
	if b, err := os.ReadFile(*tokenFile); err == nil {
		token = strings.TrimSpace(string(b))
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, u := range flag.Args() {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			fmt.Printf("error %s: %v\n", u, err)
			continue
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			fmt.Printf("error %s: %v\n", u, err)
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		fmt.Printf("%d %s\n", resp.StatusCode, u)
	}
}
