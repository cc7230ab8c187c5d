package app

import "errors"

// Errors of the refresh-token rules. Their texts are the messages clients
// see; the gRPC transport maps every error to a code in one place.
var (
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	ErrRefreshTokenReuse   = errors.New("refresh token reuse detected; session revoked")
	ErrUserAgentMismatch   = errors.New("refresh token was issued to another client")
	ErrRefreshTokenMissing = errors.New("refresh token is required")
	// ErrUnknownRefreshToken is what a SessionStore returns for a token it
	// does not hold.
	ErrUnknownRefreshToken = errors.New("unknown refresh token")
	// ErrUnavailable wraps failures of a backend that may pass (it is down,
	// overloaded or slow): the caller may retry.
	ErrUnavailable = errors.New("service temporarily unavailable")
)

// InputError is bad input reported by a backend (the user service's
// validation); its message is shown to the client.
type InputError struct{ Message string }

func (e *InputError) Error() string { return e.Message }

// CredentialsError is a login refused by the user service (wrong password);
// its message is shown to the client.
type CredentialsError struct{ Message string }

func (e *CredentialsError) Error() string { return e.Message }
