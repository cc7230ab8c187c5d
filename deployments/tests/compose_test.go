package deploytests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is the repository root seen from this package's directory.
const repoRoot = "../.."

var composeInfra = []string{"postgres", "redis", "kafka", "clickhouse"}

// loadCompose loads the root docker-compose.yml (which includes
// deployments/compose/docker-compose.yml) the way `docker compose` does:
// schema validation (unknown keys fail), interpolation, include, consistency
// checks (depends_on targets exist). Only env is seen, never the caller's
// environment or a .env file.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(kv),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposeLoadsStrictly(t *testing.T) {
	// The loader must refuse an unknown key, or the checks below prove little.
	dir := t.TempDir()
	bad := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(bad, []byte("services:\n  x:\n    image: x:1\n    helthcheck: {test: [CMD, true]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{bad}, cli.WithWorkingDirectory(dir), cli.WithName("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(context.Background()); err == nil {
		t.Fatal("a misspelt key loads without error")
	}
}

func TestCompose(t *testing.T) {
	cases := map[string]map[string]string{
		// `docker compose up` with nothing set must work: development defaults.
		"defaults": {},
		// Passwords supplied by the person running it end up where they belong.
		"passwords": {"MERCH_POSTGRES_PASSWORD": "pg-test-secret", "MERCH_CLICKHOUSE_PASSWORD": "ch-test-secret"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			p := loadCompose(t, env)
			checkCompose(t, p, env)
		})
	}
}

func checkCompose(t *testing.T, p *types.Project, env map[string]string) {
	if p.Name != "merch-shop" {
		t.Errorf("project name %q", p.Name)
	}
	for _, name := range append(slices.Clone(services), composeInfra...) {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}

	// The gateway on localhost:8080.
	gw := p.Services["gateway"]
	published := false
	for _, port := range gw.Ports {
		if port.Target == 8080 && port.Published == "8080" {
			published = true
		}
	}
	if !published {
		t.Errorf("gateway does not publish 8080:8080 (ports %+v)", gw.Ports)
	}
	for name, s := range p.Services {
		if len(s.Ports) > 0 && name != "gateway" {
			t.Errorf("%s publishes ports: only the gateway is reachable from the host", name)
		}
	}

	for name, s := range p.Services {
		if name == "kafka-topics" { // a one-shot job
			if s.Restart != "no" {
				t.Errorf("kafka-topics restarts (%q)", s.Restart)
			}
			continue
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		checkImagePinned(t, name, s.Image)
	}

	pgPassword := valueOr(env, "MERCH_POSTGRES_PASSWORD", "merch-dev-password")
	chPassword := valueOr(env, "MERCH_CLICKHOUSE_PASSWORD", "merch-dev-password")
	if got := envOf(p.Services["postgres"], "POSTGRES_PASSWORD"); got != pgPassword {
		t.Errorf("postgres password %q, want %q", got, pgPassword)
	}
	if got := envOf(p.Services["clickhouse"], "CLICKHOUSE_PASSWORD"); got != chPassword {
		t.Errorf("clickhouse password %q, want %q", got, chPassword)
	}

	root, _ := filepath.Abs(repoRoot)
	for _, name := range services {
		s := p.Services[name]
		where := "compose " + name
		if s.Build == nil || s.Build.Context != root || s.Build.Dockerfile != "deployments/docker/Dockerfile" {
			t.Errorf("%s: build %+v, want the repository root with deployments/docker/Dockerfile", where, s.Build)
		} else {
			if arg := s.Build.Args["SERVICE"]; arg == nil || *arg != name {
				t.Errorf("%s: build arg SERVICE=%v", where, arg)
			}
			if _, err := os.Stat(filepath.Join(root, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
		if !s.ReadOnly || s.User != "65532:65532" || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: want read_only, user 65532:65532 and cap_drop ALL", where)
		}

		// Infrastructure first: healthy (or, for the topics, created).
		for _, part := range uses[name] {
			dep, want := part, types.ServiceConditionHealthy
			if part == "kafka" {
				dep, want = "kafka-topics", types.ServiceConditionCompletedSuccessfully
			}
			if got, ok := s.DependsOn[dep]; !ok || got.Condition != want {
				t.Errorf("%s: depends_on %s should have condition %s (got %+v)", where, dep, want, got)
			}
		}
		// Callees: started (the gateway waits for them to be healthy).
		for _, callee := range calls[name] {
			got, ok := s.DependsOn[callee]
			if !ok || (got.Condition != types.ServiceConditionStarted && got.Condition != types.ServiceConditionHealthy) {
				t.Errorf("%s: depends_on %s missing (calls it)", where, callee)
			}
			key := strings.ToUpper(callee) + "_TARGET"
			if want := fmt.Sprintf("%s:%d", callee, grpcPort[callee]); envOf(s, key) != want {
				t.Errorf("%s: %s=%q, want %q", where, key, envOf(s, key), want)
			}
		}

		// Listening where the healthcheck and the callers look.
		if name == "gateway" {
			if envOf(s, "HTTP_ADDR") != ":8080" {
				t.Errorf("%s: HTTP_ADDR=%q", where, envOf(s, "HTTP_ADDR"))
			}
		} else {
			if envOf(s, "GRPC_ADDR") != fmt.Sprintf(":%d", grpcPort[name]) || envOf(s, "ADMIN_ADDR") != fmt.Sprintf(":%d", adminPort[name]) {
				t.Errorf("%s: GRPC_ADDR=%q ADMIN_ADDR=%q", where, envOf(s, "GRPC_ADDR"), envOf(s, "ADMIN_ADDR"))
			}
		}
		if slices.Contains(uses[name], "postgres") {
			dsn := envOf(s, "DATABASE_URL")
			if !strings.HasPrefix(dsn, "postgres://merch:"+pgPassword+"@postgres:5432/") {
				t.Errorf("%s: DATABASE_URL %q does not use the postgres service and password", where, dsn)
			}
		}
		if slices.Contains(uses[name], "kafka") && envOf(s, "KAFKA_BROKERS") != "kafka:9092" {
			t.Errorf("%s: KAFKA_BROKERS=%q", where, envOf(s, "KAFKA_BROKERS"))
		}
		if slices.Contains(uses[name], "redis") && envOf(s, "REDIS_ADDR") != "redis:6379" {
			t.Errorf("%s: REDIS_ADDR=%q", where, envOf(s, "REDIS_ADDR"))
		}
		if slices.Contains(uses[name], "clickhouse") {
			if envOf(s, "CLICKHOUSE_ADDR") != "clickhouse:9000" || envOf(s, "CLICKHOUSE_PASSWORD") != chPassword {
				t.Errorf("%s: CLICKHOUSE_ADDR=%q and its password do not match the clickhouse service", where, envOf(s, "CLICKHOUSE_ADDR"))
			}
		}
	}

	// The gateway waits for its backends to be healthy, so `up --wait` means usable.
	for _, callee := range calls["gateway"] {
		if gw.DependsOn[callee].Condition != types.ServiceConditionHealthy {
			t.Errorf("gateway: depends_on %s is not service_healthy", callee)
		}
	}

	// The init script creates every database the services use.
	init, err := os.ReadFile(filepath.Join(root, "deployments/compose/postgres-init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"auth", "user", "coins", "merch"} {
		dsn := envOf(p.Services[name], "DATABASE_URL")
		db := strings.SplitN(dsn[strings.LastIndex(dsn, "/")+1:], "?", 2)[0]
		if !strings.Contains(string(init), "CREATE DATABASE "+db+";") {
			t.Errorf("%s uses database %q, which postgres-init.sql does not create", name, db)
		}
	}
}

func envOf(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

func valueOr(m map[string]string, key, def string) string {
	if v, ok := m[key]; ok {
		return v
	}
	return def
}
