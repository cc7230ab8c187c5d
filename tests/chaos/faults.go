package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fault is one thing the suite does to the running system.
type fault struct {
	key  string // for CHAOS_ONLY
	name string
	// deps are the request types that need the broken part; the recovery
	// time is until each has been answered 200 again.
	deps []kind
	act  func(ctx context.Context) (down, up time.Time, err error)
}

var allKinds = []kind{kindInfo, kindBuy, kindSend, kindLogin}

func (s *suite) faultList() []fault {
	svc := func(name string, deps ...kind) fault {
		return fault{key: name, name: "kill -9 " + name, deps: deps, act: s.killRestart(name)}
	}
	infra := func(key, name string, hold time.Duration, deps ...kind) fault {
		return fault{key: key, name: name, deps: deps, act: s.restartInfra(key, hold)}
	}
	redis := infra("redis", fmt.Sprintf("stop Redis for %s", s.cfg.redisHold), s.cfg.redisHold, kindBuy, kindSend, kindLogin)
	kafka := infra("kafka", "restart Kafka", 0)
	coins := svc("coins", kindInfo, kindBuy, kindSend, kindLogin)
	if s.cfg.quick {
		return []fault{coins, kafka, redis}
	}
	return []fault{
		svc("gateway", allKinds...),
		svc("auth", kindLogin),
		svc("user", kindInfo, kindBuy, kindLogin),
		coins,
		svc("merch", kindBuy),
		svc("info", kindInfo),
		kafka,
		infra("postgres", "restart PostgreSQL", 0, allKinds...),
		redis,
	}
}

// killRestart kills the service with SIGKILL itself (so that the moment it
// is down is known), then has scripts/services.sh restart-one start it and
// wait until it is ready.
func (s *suite) killRestart(name string) func(ctx context.Context) (time.Time, time.Time, error) {
	return func(ctx context.Context) (time.Time, time.Time, error) {
		down, err := s.kill9(ctx, name)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		err = s.script(ctx, "scripts/services.sh", "restart-one", name)
		return down, time.Now(), err
	}
}

// restartInfra stops a server with its script, keeps it down for hold (the
// fault's duration) and starts it again.
func (s *suite) restartInfra(server string, hold time.Duration) func(ctx context.Context) (time.Time, time.Time, error) {
	return func(ctx context.Context) (time.Time, time.Time, error) {
		path := "scripts/infra/" + server + ".sh"
		if err := s.script(ctx, path, "stop"); err != nil {
			return time.Time{}, time.Time{}, err
		}
		down := time.Now()
		if hold > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(hold):
			}
		}
		err := s.script(context.WithoutCancel(ctx), path, "start")
		if server == "postgres" {
			s.db.reset()
		}
		return down, time.Now(), err
	}
}

// kill9 sends SIGKILL to the service named in its pid file and returns when
// it died (exited or a zombie: its sockets are closed). It returns once the
// process is reaped too, since scripts/services.sh restart-one waits on
// kill -0 (the init of this machine may reap a second or two late).
func (s *suite) kill9(ctx context.Context, name string) (time.Time, error) {
	pidFile := filepath.Join(s.cfg.state, "run", name+".pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return time.Time{}, fmt.Errorf("kill -9 %s: %w", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return time.Time{}, fmt.Errorf("kill -9 %s: bad pid file %s", name, pidFile)
	}
	// Only the service's own binary, never a recycled pid.
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != name {
		return time.Time{}, fmt.Errorf("kill -9 %s: pid %d is not the running %s (%s)", name, pid, name, exe)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return time.Time{}, fmt.Errorf("kill -9 %s (pid %d): %w", name, pid, err)
	}
	var died time.Time
	err = waitFor(ctx, 15*time.Second, 5*time.Millisecond, func(context.Context) (bool, error) {
		if died.IsZero() && !running(pid) {
			died = time.Now()
		}
		return syscall.Kill(pid, 0) != nil, nil
	})
	if died.IsZero() {
		died = time.Now()
	}
	return died, err
}

// running: the process exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// dead reports whether the service's process is not running.
func (s *suite) dead(name string) bool {
	raw, err := os.ReadFile(filepath.Join(s.cfg.state, "run", name+".pid"))
	if err != nil {
		return true
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return err != nil || syscall.Kill(pid, 0) != nil
}

// script runs one of the repository's scripts; its output goes to the
// suite's log file and, on failure, into the error.
func (s *suite) script(ctx context.Context, path string, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(s.cfg.repo, path)}, args...)...)
	cmd.Dir = s.cfg.repo
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if s.scriptLog != nil {
		_, _ = fmt.Fprintf(s.scriptLog, "== %s %s %s (%v)\n%s", time.Now().Format(time.RFC3339), path, strings.Join(args, " "), err, buf.Bytes())
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, lastLines(buf.String(), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// heal brings back whatever a failed fault left down, so that the run goes
// on (and the system is left running).
func (s *suite) heal(ctx context.Context) {
	if err := s.script(ctx, "scripts/infra/up.sh"); err != nil {
		s.log.Printf("heal: infra: %v", err)
	}
	s.db.reset()
	for _, name := range serviceNames {
		if s.dead(name) {
			if err := s.script(ctx, "scripts/services.sh", "restart-one", name); err != nil {
				s.log.Printf("heal: %s: %v", name, err)
			}
		}
	}
}

var serviceNames = []string{"user", "coins", "auth", "merch", "info", "gateway"}

var adminURLs = []string{
	"http://127.0.0.1:8080/readyz", "http://127.0.0.1:8081/readyz", "http://127.0.0.1:8082/readyz",
	"http://127.0.0.1:8083/readyz", "http://127.0.0.1:8084/readyz", "http://127.0.0.1:8085/readyz",
}

// waitReady waits until every service answers /readyz with 200.
func (s *suite) waitReady(ctx context.Context) error {
	return waitFor(ctx, s.cfg.deadline, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		for _, u := range adminURLs {
			a := s.admin.call(ctx, "GET", u, "", "", nil)
			if a.code != 200 {
				return false, fmt.Errorf("%s: %s", u, a)
			}
		}
		return true, nil
	})
}
