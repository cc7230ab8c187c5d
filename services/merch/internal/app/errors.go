package app

import (
	"errors"
	"fmt"
)

// Errors clients see. The gRPC transport maps each to a status code in one
// place; their texts are the messages shown to the client.
var (
	ErrUnknownItem       = errors.New("unknown item")
	ErrInvalidUserID     = errors.New("user id must be a uuid")
	ErrInvalidKey        = errors.New("idempotency key must be 1 to 200 characters")
	ErrKeyReused         = errors.New("idempotency key was already used for a different request")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrAccountNotFound   = errors.New("account not found")
	// ErrPaymentRefused: the coins service refused the charge for a reason
	// other than funds; nothing was paid.
	ErrPaymentRefused = errors.New("payment was refused")
	// ErrRefunded: the item could not be granted after the charge, so the
	// charge was paid back and the order failed.
	ErrRefunded = errors.New("purchase failed and was refunded")
	// ErrPending: a step could not be completed now (a backend is
	// unavailable); the order stays pending and the recovery loop, or a retry
	// with the same key, drives it on.
	ErrPending = errors.New("purchase is being processed, retry with the same idempotency key")
	// ErrOrderFailed wraps a stored failure this version does not know.
	ErrOrderFailed = errors.New("purchase failed")
)

// Errors the adapters of other services return, wrapped around the cause.
var (
	// ErrTransient: the call may have failed before or after its effect;
	// repeating it with the same key is safe.
	ErrTransient = errors.New("backend temporarily unavailable")
	// ErrRejected: the backend refused the request for good.
	ErrRejected = errors.New("backend rejected the request")
)

// failures are the outcomes stored in a failed order, by their text.
var failures = []error{ErrInsufficientFunds, ErrAccountNotFound, ErrPaymentRefused, ErrRefunded}

// failureError turns a stored failure text back into its error, so that a
// replay returns the first outcome.
func failureError(text string) error {
	for _, e := range failures {
		if e.Error() == text {
			return e
		}
	}
	return fmt.Errorf("%w: %s", ErrOrderFailed, text)
}
