// Command chaos is the fault suite of Merch Shop. Against the system that
// `make run` starts it registers users, runs a mixed workload over the
// public HTTP API and, in turn, kills each service with SIGKILL and restarts
// it, restarts Kafka and PostgreSQL and stops Redis for a while. After each
// fault and a drain it checks the money and goods invariants in the
// databases (read-only) and through the API, and that the ClickHouse read
// model reconciles with the ledger; it also forces purchases into the window
// between the charge and the grant and kills merch or user there. It prints
// a Markdown report and exits 1 when any guarantee failed.
//
// Run it with scripts/chaos.sh (`make chaos`; CHAOS_QUICK=1 for the CI
// subset). Settings: see config.go and docs/reliability.md.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	os.Exit(run())
}

func run() int {
	logger := log.New(os.Stderr, "chaos: ", log.Ltime)
	cfg, err := loadConfig()
	if err != nil {
		logger.Print(err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	db, err := openDBs(ctx, cfg)
	if err != nil {
		logger.Print(err)
		return 2
	}
	defer db.close()

	logDir := filepath.Join(cfg.state, "logs")
	scriptLog := io.Discard
	if err := os.MkdirAll(logDir, 0o755); err == nil {
		if f, err := os.OpenFile(filepath.Join(logDir, "chaos.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			defer func() { _ = f.Close() }()
			scriptLog = f
		}
	}

	s := &suite{
		cfg: cfg, c: newClient(cfg.baseURL), admin: newClient(""), db: db, rec: &recorder{},
		log: logger, scriptLog: scriptLog,
	}
	runErr := s.run(ctx)
	if runErr != nil {
		logger.Printf("run aborted: %v", runErr)
		if s.wl == nil {
			return 2
		}
	}
	// Leave the system running whatever happened.
	s.heal(context.WithoutCancel(ctx))

	var buf bytes.Buffer
	s.report(&buf)
	if runErr != nil {
		fmt.Fprintf(&buf, "\nRun aborted: %v\n", runErr)
	}
	_, _ = os.Stdout.Write(buf.Bytes())
	if cfg.report != "" {
		if err := os.WriteFile(cfg.report, buf.Bytes(), 0o644); err != nil {
			logger.Printf("write report: %v", err)
		} else {
			logger.Printf("report written to %s", cfg.report)
		}
	}
	if runErr != nil || !s.ok() {
		return 1
	}
	return 0
}
