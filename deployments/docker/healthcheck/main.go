// Command healthcheck is the HEALTHCHECK of the Merch Shop images, which are
// built FROM scratch and so have no shell, curl or wget. It GETs one URL and
// exits 0 when the answer is 2xx, 1 otherwise (Docker's convention).
//
// The URL is the first argument, else $HEALTHCHECK_URL (the image sets it to
// the service's /healthz), else it is derived from $HTTP_ADDR (gateway) or
// $ADMIN_ADDR (backends) so an overridden port is followed.
//
// Kubernetes does not use it: the chart's probes are httpGet (gateway) and
// native gRPC health (backends). It serves `docker run`, docker compose and
// the chart's `helm test` pod.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	url, err := target(os.Args[1:], os.Getenv)
	if err == nil {
		err = check(url, 3*time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// target picks the URL to check.
func target(args []string, getenv func(string) string) (string, error) {
	if len(args) > 0 && args[0] != "" {
		return args[0], nil
	}
	// An address set at run time wins over the image's default URL.
	for _, key := range []string{"HTTP_ADDR", "ADMIN_ADDR"} {
		if addr := getenv(key); addr != "" {
			return urlFor(addr)
		}
	}
	if u := getenv("HEALTHCHECK_URL"); u != "" {
		return u, nil
	}
	return "", fmt.Errorf("no URL: pass one, or set HEALTHCHECK_URL, HTTP_ADDR or ADMIN_ADDR")
}

// urlFor turns a listen address (":8081", "0.0.0.0:8081", "[::]:8081") into
// the loopback /healthz URL of that port.
func urlFor(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("bad listen address %q", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

func check(url string, timeout time.Duration) error {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return fmt.Errorf("not an http(s) URL: %q", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
