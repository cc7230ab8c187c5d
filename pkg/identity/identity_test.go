package identity

import (
	"context"
	"testing"
)

func TestCallerRoundTripsThroughTheContext(t *testing.T) {
	for _, name := range []string{"alice", "Алексей", "山田やまだ", "محمد", "e\u0301", "party\U0001f389"} {
		want := Caller{UserID: "0b7e3f4c-8a51-4a5c-9d0e-1f2a3b4c5d6e", Username: name}
		got, ok := FromContext(WithCaller(context.Background(), want))
		if !ok || got != want {
			t.Errorf("FromContext = %+v, %v; want %+v, true", got, ok, want)
		}
	}
}

func TestNoCaller(t *testing.T) {
	if c, ok := FromContext(context.Background()); ok {
		t.Errorf("FromContext without a caller = %+v, true", c)
	}
	if c, ok := FromContext(WithCaller(context.Background(), Caller{Username: "alice"})); ok {
		t.Errorf("FromContext of a caller without id = %+v, true", c)
	}
}
