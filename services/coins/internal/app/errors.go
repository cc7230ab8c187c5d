package app

import "errors"

// Kind classifies a domain error; the transport maps each kind to one
// status code in one place.
type Kind int

// Error kinds.
const (
	// KindInvalid is bad input.
	KindInvalid Kind = iota + 1
	// KindNotFound is a missing account.
	KindNotFound
	// KindFailedPrecondition is a request that the current state refuses.
	KindFailedPrecondition
	// KindConflict is a request that clashes with an earlier one.
	KindConflict
	// KindBusy is contention that outlasted the bounded retries; the caller
	// may retry the same request (with the same idempotency key).
	KindBusy
	// KindUnavailable is a dependency that could not be reached before
	// anything was written; the caller may retry later.
	KindUnavailable
)

// Error is a domain error with a short lowercase message that is safe to
// show to a client verbatim.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// KindOf returns the kind of a domain error in err's chain, or 0.
func KindOf(err error) Kind {
	var de *Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return 0
}

// Domain errors. Compare with errors.Is.
var (
	ErrAmountTooSmall    = &Error{KindInvalid, "amount must be at least 1"}
	ErrAmountTooLarge    = &Error{KindInvalid, "amount is too large"}
	ErrSelfTransfer      = &Error{KindInvalid, "cannot send coins to yourself"}
	ErrInvalidUserID     = &Error{KindInvalid, "invalid user id"}
	ErrInvalidUsername   = &Error{KindInvalid, "username must be 1 to 64 printable characters without spaces"}
	ErrRecipientRequired = &Error{KindInvalid, "recipient username is required"}
	ErrKeyRequired       = &Error{KindInvalid, "idempotency key is required"}
	ErrKeyTooLong        = &Error{KindInvalid, "idempotency key must be at most 200 characters"}
	ErrKeyInvalid        = &Error{KindInvalid, "idempotency key must be printable text"}
	ErrReasonInvalid     = &Error{KindInvalid, "reason must be at most 200 printable characters"}
	ErrUnknownRecipient  = &Error{KindNotFound, "unknown recipient"}
	ErrAccountNotFound   = &Error{KindNotFound, "account not found"}
	ErrInsufficientFunds = &Error{KindFailedPrecondition, "insufficient funds"}
	ErrKeyReused         = &Error{KindConflict, "idempotency key was already used for a different request"}
	ErrUsernameTaken     = &Error{KindConflict, "username belongs to another account"}
	ErrBusy              = &Error{KindBusy, "please retry"}
	// ErrViewsUnavailable: the info view cache could not be told of a
	// movement, so nothing moved (a movement it was not told of could let a
	// stale view be served).
	ErrViewsUnavailable = &Error{KindUnavailable, "temporarily unavailable, please retry"}
)
