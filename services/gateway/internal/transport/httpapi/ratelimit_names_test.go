package httpapi_test

import "testing"

// The composed and decomposed spellings of a name are one user, so they
// share one bucket: alternating them buys no extra guesses.
func TestLoginLimitCountsTheUserNotTheSpelling(t *testing.T) {
	e := limitedEnv(t, 2, 100)
	composed, decomposed := "Ren\u00e9e", "Rene\u0301e"
	e.login(composed)
	wantError(t, e.do("POST", "/api/auth", loginBody(composed, "wrong")), 401, "invalid username or password")
	wantError(t, e.do("POST", "/api/auth", loginBody(decomposed, "wrong")), 401, "invalid username or password")
	wantTooMany(t, e.do("POST", "/api/auth", loginBody(decomposed, "wrong")))
	wantTooMany(t, e.do("POST", "/api/auth", loginBody(composed, "wrong")))
}
