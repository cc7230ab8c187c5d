// Command procstat samples the CPU and memory of the system's processes
// while a load run goes on and writes a JSON summary per process group: the
// six services (by the pid files of scripts/services.sh), PostgreSQL (all
// its processes), Redis, Kafka, ClickHouse, the load generator (cmd/shoot,
// by its command name), and "other" (everything else on the machine: other
// jobs that disturb a run).
//
// CPU is in percent of one core (200% = both cores of this machine), from
// /proc/<pid>/stat deltas; memory is the sum of the group's proportional set
// size (PSS, /proc/<pid>/smaps_rollup), so PostgreSQL's shared buffers are
// counted once rather than once per backend.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/merchshop/merchshop/tests/load/internal/results"
)

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

func main() {
	state := flag.String("state", ".state", "the system's state directory (pid files in run/)")
	dur := flag.Duration("duration", 60*time.Second, "how long to sample (SIGTERM ends earlier)")
	every := flag.Duration("interval", time.Second, "sampling interval")
	out := flag.String("out", "procstat.json", "summary file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	s, err := sample(ctx, *state, *every)
	if err != nil {
		fmt.Fprintln(os.Stderr, "procstat:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "procstat:", err)
		os.Exit(1)
	}
}

var services = []string{"gateway", "auth", "user", "coins", "merch", "info"}

// classify names the group of a process, "" for "other".
func classify(pid int, comm string, cmdline string, svcPids map[int]string) string {
	if g, ok := svcPids[pid]; ok {
		return g
	}
	// A service restarted by someone else (a fault test) has a pid the pid
	// files may not show yet; its command name is the service's.
	for _, s := range services {
		if comm == s {
			return s
		}
	}
	switch {
	case comm == "postgres":
		return "postgres"
	case comm == "redis-server":
		return "redis"
	case comm == "java" && strings.Contains(cmdline, "kafka.Kafka"):
		return "kafka"
	case strings.HasPrefix(comm, "clickhouse"):
		return "clickhouse"
	case comm == "shoot":
		return "shoot"
	}
	return ""
}

type procSample struct {
	group string
	ticks uint64
}

func servicePids(state string) map[int]string {
	out := map[int]string{}
	for _, s := range services {
		b, err := os.ReadFile(filepath.Join(state, "run", s+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out[pid] = s
		}
	}
	return out
}

// snapshot reads every process's CPU ticks and, with mem, the PSS of the
// processes in named groups. Classification is cached by pid and start time
// (reading cmdlines is the slow part on a busy machine).
func (c *classifier) snapshot(mem bool) (map[int]procSample, time.Time, map[string]float64) {
	procs := map[int]procSample{}
	pss := map[string]float64{}
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// comm is in parentheses and may hold spaces: split after the last ')'.
		open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || closing < open {
			continue
		}
		comm := string(stat[open+1 : closing])
		f := strings.Fields(string(stat[closing+1:]))
		if len(f) < 20 {
			continue
		}
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		g := c.group(pid, f[19], comm)
		procs[pid] = procSample{group: g, ticks: ut + st}
	}
	// The CPU figures are as of now; memory is read after them.
	at := time.Now()
	if mem {
		for pid, p := range procs {
			if p.group != "other" {
				pss[p.group] += pssMB(pid)
			}
		}
	}
	return procs, at, pss
}

type classifier struct {
	svc   map[int]string
	known map[string]string // "pid/starttime" -> group
}

func (c *classifier) group(pid int, start, comm string) string {
	if g, ok := c.svc[pid]; ok {
		return g
	}
	k := strconv.Itoa(pid) + "/" + start
	if g, ok := c.known[k]; ok {
		return g
	}
	cmd := ""
	if comm == "java" {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmd = strings.ReplaceAll(string(b), "\x00", " ")
	}
	g := classify(pid, comm, cmd, c.svc)
	if g == "" {
		g = "other"
	}
	c.known[k] = g
	return g
}

func pssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Pss:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// machineTicks returns busy and total ticks of /proc/stat's cpu line.
func machineTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

func load1() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func sample(ctx context.Context, state string, every time.Duration) (results.Procstat, error) {
	svc := servicePids(state)
	if len(svc) == 0 {
		return results.Procstat{}, fmt.Errorf("no pid files in %s/run: is the system running?", state)
	}
	cores := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cores = strings.Count(string(b), "\nprocessor") + 1
	}
	s := results.Procstat{Groups: map[string]results.GroupStats{}, Cores: cores}
	s.Load1[0] = load1()
	c := &classifier{svc: svc, known: map[string]string{}}
	start := time.Now()
	prev, prevT, _ := c.snapshot(false)
	b0, t0 := machineTicks()
	cpuSum := map[string]float64{}
	memSamples := 0
	sampled := 0.0 // seconds covered by CPU samples
	memSum := map[string]float64{}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b1, t1 := machineTicks()
			if t1 > t0 {
				s.MachineCPU = float64(b1-b0) / float64(t1-t0) * 100 * float64(cores)
			}
			s.Seconds = time.Since(start).Seconds()
			s.Load1[1] = load1()
			for g, st := range s.Groups {
				if sampled > 0 {
					st.CPUAvg = round(cpuSum[g] / sampled)
				}
				if memSamples > 0 {
					st.MemAvg = round(memSum[g] / float64(memSamples))
				}
				st.CPUMax, st.MemMax = round(st.CPUMax), round(st.MemMax)
				s.Groups[g] = st
			}
			s.MachineCPU = round(s.MachineCPU)
			return s, nil
		case <-tick.C:
			// Memory every fifth sample: PSS is slow to read and changes slowly.
			mem := s.Samples%5 == 0
			cur, now, pss := c.snapshot(mem)
			secs := now.Sub(prevT).Seconds()
			cpu := map[string]float64{}
			for pid, p := range cur {
				// A process new since the last sample counts from its next one.
				if old, ok := prev[pid]; ok && p.ticks >= old.ticks {
					cpu[p.group] += float64(p.ticks-old.ticks) / clkTck / secs * 100
				}
			}
			groups := append([]string{"other"}, services...)
			groups = append(groups, "postgres", "redis", "kafka", "clickhouse", "shoot")
			sort.Strings(groups)
			for _, g := range groups {
				st := s.Groups[g]
				st.CPUMax = max(st.CPUMax, cpu[g])
				if mem {
					st.MemMax = max(st.MemMax, pss[g])
					memSum[g] += pss[g]
				}
				s.Groups[g] = st
				cpuSum[g] += cpu[g] * secs
			}
			sampled += secs
			if mem {
				memSamples++
			}
			s.Samples++
			prev, prevT = cur, now
		}
	}
}

func round(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
