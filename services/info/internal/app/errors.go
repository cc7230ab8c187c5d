package app

import "errors"

// Errors clients see. The gRPC transport maps each to a status code in one
// place; their texts are the messages shown to the client.
var (
	ErrInvalidUserID   = errors.New("user id must be a uuid")
	ErrAccountNotFound = errors.New("account not found")
	ErrInvalidLimit    = errors.New("limit must be between 1 and 100")
	ErrInvalidCursor   = errors.New("invalid cursor")
	// ErrUnavailable hides a backend's failure behind a generic message.
	ErrUnavailable = errors.New("info is temporarily unavailable")
)

// ErrNotFound is wrapped by the adapters of other services when the user is
// unknown to them.
var ErrNotFound = errors.New("not found")
