// Package keys loads the Ed25519 keys that sign and verify access tokens:
// PEM files (PKCS#8 private keys, PKIX public keys), and in development a
// key generated once and kept on disk.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DevKeyFile is the name of the development key in its directory.
const DevKeyFile = "auth_ed25519.pem"

// KeyID names a public key: the first 16 hex characters of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// EncodePrivate returns key as a PKCS#8 PEM block.
func EncodePrivate(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublic returns key as a PKIX PEM block.
func EncodePublic(key ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivate reads a PEM PKCS#8 Ed25519 private key.
func ParsePrivate(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want Ed25519", k)
	}
	return priv, nil
}

// ParsePublic reads a PEM PKIX Ed25519 public key. A PKCS#8 private key is
// accepted too (its public half is used), so that a retired signing key
// file can be kept as a verify-only key.
func ParsePublic(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		priv, err := ParsePrivate(data)
		if err != nil {
			return nil, err
		}
		return priv.Public().(ed25519.PublicKey), nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKIX: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, want Ed25519", k)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a key", block.Type)
}

// LoadPrivate reads a private key file.
func LoadPrivate(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k, err := ParsePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return k, nil
}

// LoadPublic reads a public key file.
func LoadPublic(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify key: %w", err)
	}
	k, err := ParsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("verify key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateDev returns the development key kept in dir, generating it
// (mode 0600) on first use. Replicas starting at once agree on one key: the
// file is written aside and linked into place, and whoever loses the race
// reads the winner's key. It reports whether it created the key.
func LoadOrCreateDev(dir string) (ed25519.PrivateKey, string, bool, error) {
	path := filepath.Join(dir, DevKeyFile)
	if k, err := LoadPrivate(path); err == nil {
		return k, path, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, path, false, fmt.Errorf("dev key dir: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, path, false, fmt.Errorf("generate dev key: %w", err)
	}
	data, err := EncodePrivate(priv)
	if err != nil {
		return nil, path, false, err
	}
	tmp, err := os.CreateTemp(dir, ".auth_ed25519-*.pem")
	if err != nil {
		return nil, path, false, fmt.Errorf("dev key: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // the link, if made, keeps the file
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return nil, path, false, fmt.Errorf("dev key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return nil, path, false, fmt.Errorf("dev key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, path, false, fmt.Errorf("dev key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, path, false, fmt.Errorf("dev key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err := LoadPrivate(path)
			return k, path, false, err
		}
		return nil, path, false, fmt.Errorf("dev key: %w", err)
	}
	return priv, path, true, nil
}
