package httpapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

// ownMessages are the decode errors the client may see; protojson's own
// wording must never come through.
var ownMessages = []string{
	"invalid JSON body",
	"request body must be a JSON object",
	"toUser must be a string",
	"amount must be an integer",
	"amount is out of range",
}

// FuzzDecodeSendCoin feeds arbitrary bodies to the strict decoder: it never
// panics, it answers only with our own messages, and what it accepts is a
// JSON object whose amount, if present, is an int32 number.
func FuzzDecodeSendCoin(f *testing.F) {
	for _, s := range []string{
		`{"toUser":"bob","amount":10}`, `{"toUser":"bob","amount":"10"}`, `{"amount":1.5}`,
		`{"amount":1e100}`, `[]`, `{`, ``, `{"to_user":"x","amount":-2147483648}`,
	} {
		f.Add([]byte(s))
	}
	m := httpapi.NewMarshaler()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req shopv1.SendCoinRequest
		err := m.NewDecoder(strings.NewReader(string(data))).Decode(&req)
		if errors.Is(err, io.EOF) {
			if strings.TrimSpace(string(data)) != "" {
				t.Fatalf("EOF for a non-empty body %q", data)
			}
			return
		}
		if err != nil {
			msg := err.Error()
			known := false
			for _, k := range ownMessages {
				known = known || msg == k
			}
			if !known || !utf8.ValidString(msg) || strings.ContainsRune(msg, '\u00a0') {
				t.Fatalf("body %q: foreign error message %q", data, msg)
			}
			return
		}
		var obj map[string]any
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", data)
		}
		for _, k := range []string{"amount"} {
			if v, ok := obj[k]; ok && v != nil {
				f, isNum := v.(float64)
				if !isNum || f != float64(req.GetAmount()) {
					t.Fatalf("body %q: amount %v decoded as %d", data, v, req.GetAmount())
				}
			}
		}
	})
}
