package app

import "errors"

// Domain errors. The gRPC transport maps them to status codes in one place;
// their texts are the messages clients see.
var (
	ErrInvalidUsername    = errors.New("username must be 1 to 64 printable characters without spaces")
	ErrInvalidPassword    = errors.New("password must be 1 to 72 printable characters")
	ErrInvalidUserID      = errors.New("user id must be a uuid")
	ErrInvalidOrderID     = errors.New("order id must be a uuid")
	ErrInvalidItem        = errors.New("item must be 1 to 64 printable characters without spaces")
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrUnknownUser        = errors.New("unknown user")
	// ErrOrderConflict: an order id already granted a different user or
	// item; the replay is refused rather than silently accepted.
	ErrOrderConflict = errors.New("order id was already used for another grant")
	// ErrViewsUnavailable: the info view cache could not be told of a grant,
	// so nothing was granted; the caller may retry later.
	ErrViewsUnavailable = errors.New("temporarily unavailable, please retry")
	// ErrBusy: too many password hashes and checks are in progress (the
	// bcrypt pool is full); nothing was written, the caller may retry.
	ErrBusy = errors.New("too many logins in progress, retry later")
)
