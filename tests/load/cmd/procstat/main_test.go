package main

import "testing"

func TestClassify(t *testing.T) {
	svc := map[int]string{10: "gateway"}
	for _, tc := range []struct {
		pid           int
		comm, cmdline string
		want          string
	}{
		{10, "gateway", "", "gateway"},
		{11, "coins", "", "coins"}, // restarted: a pid the pid files do not show yet
		{12, "shoot", "", "shoot"}, // the load generator
		{13, "postgres", "", "postgres"},
		{14, "java", "java -cp kafka kafka.Kafka server.properties", "kafka"},
		{15, "java", "java -jar other.jar", ""},
		{16, "clickhouse-serv", "", "clickhouse"},
		{17, "k6", "", ""},
		{18, "shoot.test", "", ""},
	} {
		if got := classify(tc.pid, tc.comm, tc.cmdline, svc); got != tc.want {
			t.Errorf("classify(%d, %q) = %q, want %q", tc.pid, tc.comm, got, tc.want)
		}
	}
}
