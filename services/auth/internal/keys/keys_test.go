package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestPEMRoundTrip(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := EncodePrivate(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := EncodePublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	gotPriv, err := ParsePrivate(privPEM)
	if err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("ParsePrivate: %v", err)
	}
	for name, data := range map[string][]byte{"public": pubPEM, "private": privPEM} {
		gotPub, err := ParsePublic(data)
		if err != nil || !gotPub.Equal(pub) {
			t.Fatalf("ParsePublic(%s): %v", name, err)
		}
	}
	if _, err := ParsePrivate(pubPEM); err == nil {
		t.Fatal("a public key parsed as a private key")
	}
	if _, err := ParsePublic([]byte("garbage")); err == nil {
		t.Fatal("garbage parsed as a key")
	}
}

func TestKeyID(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	kid := KeyID(pub)
	if len(kid) != 16 || kid != KeyID(pub) {
		t.Fatalf("kid %q", kid)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if KeyID(other) == kid {
		t.Fatal("two keys, one kid")
	}
}

func TestDevKeyCreatedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], _, created[i], errs[i] = LoadOrCreateDev(dir)
		}()
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatal("concurrent starts got different dev keys")
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Fatalf("%d callers created the key, want 1", creators)
	}
	path := filepath.Join(dir, DevKeyFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("dev key mode %v, want 0600", st.Mode().Perm())
	}
	again, _, createdAgain, err := LoadOrCreateDev(dir)
	if err != nil || createdAgain || !again.Equal(keys[0]) {
		t.Fatalf("reload: created %v err %v", createdAgain, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}
