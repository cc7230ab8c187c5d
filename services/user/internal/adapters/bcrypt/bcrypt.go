// Package bcrypt hashes passwords with bcrypt.
package bcrypt

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// Hasher is a bcrypt hasher with a fixed cost.
type Hasher struct {
	cost int
}

// New returns a hasher; cost must be within bcrypt's bounds (4..31).
func New(cost int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return &Hasher{cost: cost}, nil
}

// Hash hashes password.
func (h *Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return string(b), nil
}

// Matches reports whether password is the one hash was made from. A
// malformed hash matches nothing.
func (h *Hasher) Matches(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
