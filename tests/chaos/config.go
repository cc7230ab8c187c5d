package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is what the suite reads from the environment (scripts/chaos.sh
// sources .state/env first).
type config struct {
	baseURL string
	repo    string // repository root: scripts/ are run from here
	state   string // .state: pid files, binaries
	quick   bool   // CHAOS_QUICK=1: the CI subset
	only    map[string]bool

	users int     // workload users
	rate  float64 // requests per second the workload offers
	// maxInflight bounds the requests in flight; arrivals beyond it are
	// shed (counted, not queued).
	maxInflight int
	timeout     time.Duration // the whole run

	baseline  time.Duration // load before each fault
	post      time.Duration // load after recovery, before the check
	redisHold time.Duration // how long Redis stays down
	deadline  time.Duration // every recovery or drain wait

	coinsDSN, userDSN, merchDSN string

	runID  string // unique per run: usernames and idempotency keys
	report string // file the report is also written to ("" = none)
}

func loadConfig() (config, error) {
	var errs []error
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	num := func(k string, def int) int {
		v, err := strconv.Atoi(env(k, strconv.Itoa(def)))
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive integer", k))
		}
		return v
	}
	dur := func(k string, def time.Duration) time.Duration {
		v, err := time.ParseDuration(env(k, def.String()))
		if err != nil || v < 0 {
			errs = append(errs, fmt.Errorf("%s must be a duration", k))
		}
		return v
	}
	need := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set (source .state/env)", k))
		}
		return v
	}

	c := config{quick: os.Getenv("CHAOS_QUICK") == "1"}
	c.baseURL = strings.TrimRight(env("BASE_URL", "http://127.0.0.1:8080"), "/")
	repo, err := findRepo()
	if err != nil {
		errs = append(errs, err)
	}
	c.repo = env("CHAOS_REPO", repo)
	c.state = env("MERCH_STATE_DIR", filepath.Join(c.repo, ".state"))
	if o := os.Getenv("CHAOS_ONLY"); o != "" {
		c.only = map[string]bool{}
		for _, n := range strings.Split(o, ",") {
			c.only[strings.TrimSpace(n)] = true
		}
	}
	defUsers, defTimeout, defHold := 100, 15*time.Minute, 10*time.Second
	if c.quick {
		defUsers, defTimeout, defHold = 50, 6*time.Minute, 6*time.Second
	}
	c.users = num("CHAOS_USERS", defUsers)
	c.rate = float64(num("CHAOS_RATE", 100))
	c.maxInflight = num("CHAOS_MAX_INFLIGHT", 256)
	c.timeout = dur("CHAOS_TIMEOUT", defTimeout)
	c.baseline = dur("CHAOS_BASELINE", 3*time.Second)
	c.post = dur("CHAOS_POST", 3*time.Second)
	c.redisHold = dur("CHAOS_REDIS_DOWN", defHold)
	c.deadline = dur("CHAOS_DEADLINE", 120*time.Second)
	c.coinsDSN = need("COINS_DATABASE_URL")
	c.userDSN = need("USER_DATABASE_URL")
	c.merchDSN = need("MERCH_DATABASE_URL")
	c.report = os.Getenv("CHAOS_REPORT")

	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		errs = append(errs, err)
	}
	c.runID = hex.EncodeToString(b)
	return c, errors.Join(errs...)
}

// findRepo walks up from the working directory to the directory holding
// go.work.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "scripts", "services.sh")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.work and scripts/services.sh) not found above the working directory; set CHAOS_REPO")
		}
		dir = parent
	}
}
