package users

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	for target, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080": true, "127.0.0.1:8080": true,
		"http://[::1]:8080": true, "http://127.0.0.2": true,
		"http://10.0.0.1:8080": false, "http://example.com": false, "192.168.1.1:80": false, "": false,
	} {
		if got := CheckLoopback(target) == nil; got != want {
			t.Errorf("CheckLoopback(%q) allowed=%v, want %v", target, got, want)
		}
	}
}

func TestReadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.tsv")
	data := Name("load", 0) + "\t" + Password("load", 0) + "\tt0\n" + Name("load", 1) + "\t" + Password("load", 1) + "\tt1\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Name != "load-000001" || got[1].Password != "pw-load-000001-x" || got[1].Token != "t1" {
		t.Fatalf("read %+v", got)
	}
	if err := os.WriteFile(path, []byte("a\tb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Fatal("malformed line accepted")
	}
}
