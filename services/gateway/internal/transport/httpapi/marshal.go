package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Decode errors. Their messages reach the client verbatim (as 400s), so they
// are our own wording, never protojson's (which varies and can carry a
// non-breaking space).
var (
	errInvalidJSON = errors.New("invalid JSON body")
	errNotObject   = errors.New("request body must be a JSON object")
)

// Marshaler is runtime.JSONPb with compact output and strict request
// decoding: integer fields take JSON numbers only (no strings, fractions,
// exponents or values out of range) and the body must be one JSON object.
type Marshaler struct {
	runtime.JSONPb
}

var _ runtime.Marshaler = (*Marshaler)(nil)

// NewMarshaler returns the gateway's marshaler: lowerCamelCase names, zero
// values and empty lists emitted, unknown request fields ignored.
func NewMarshaler() *Marshaler {
	return &Marshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}}
}

// Marshal encodes v compactly (protojson inserts random spaces on purpose).
func (m *Marshaler) Marshal(v any) ([]byte, error) {
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("compact JSON: %w", err)
	}
	return out.Bytes(), nil
}

// NewEncoder returns an encoder writing Marshal's output.
func (m *Marshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

// Unmarshal decodes data into v strictly (see Marshaler).
func (m *Marshaler) Unmarshal(data []byte, v any) error {
	msg, ok := v.(proto.Message)
	if !ok {
		if err := m.JSONPb.Unmarshal(data, v); err != nil {
			return errInvalidJSON
		}
		return nil
	}
	if err := CheckJSON(data, msg.ProtoReflect().Descriptor()); err != nil {
		return err
	}
	if err := m.JSONPb.Unmarshal(data, v); err != nil {
		return errInvalidJSON
	}
	return nil
}

// NewDecoder reads the whole body (already bounded by the body limit) and
// decodes it with Unmarshal. An empty body decodes as io.EOF, which the
// generated handlers take as "no fields set".
func (m *Marshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read request body: %w", err)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF
		}
		return m.Unmarshal(data, v)
	})
}

// CheckJSON reports whether data is a single JSON object whose values have
// the JSON types the fields of md require. Unknown fields are ignored (they
// are discarded when decoding); well-known types are left to protojson.
func CheckJSON(data []byte, md protoreflect.MessageDescriptor) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return errInvalidJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errInvalidJSON
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errNotObject
	}
	return checkMessage(md, obj, "")
}

func checkMessage(md protoreflect.MessageDescriptor, obj map[string]any, prefix string) error {
	fields := md.Fields()
	for key, val := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil || val == nil {
			// Unknown fields are discarded; null means the default value.
			continue
		}
		name := prefix + fd.JSONName()
		switch {
		case fd.IsMap():
			m, ok := val.(map[string]any)
			if !ok {
				return fmt.Errorf("%s must be an object", name)
			}
			for k, mv := range m {
				if mv == nil {
					continue
				}
				if err := checkValue(fd.MapValue(), mv, name+"."+k); err != nil {
					return err
				}
			}
		case fd.IsList():
			list, ok := val.([]any)
			if !ok {
				return fmt.Errorf("%s must be an array", name)
			}
			for i, e := range list {
				if err := checkValue(fd, e, name+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		default:
			if err := checkValue(fd, val, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkValue(fd protoreflect.FieldDescriptor, val any, name string) error {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return checkInt(val, name, 32, true)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return checkInt(val, name, 64, true)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return checkInt(val, name, 32, false)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return checkInt(val, name, 64, false)
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := val.(string); !ok {
			return fmt.Errorf("%s must be a string", name)
		}
	case protoreflect.BoolKind:
		if _, ok := val.(bool); !ok {
			return fmt.Errorf("%s must be true or false", name)
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		switch val.(type) {
		case json.Number, string: // protojson also takes "NaN", "Infinity"
		default:
			return fmt.Errorf("%s must be a number", name)
		}
	case protoreflect.EnumKind:
		switch val.(type) {
		case json.Number, string:
		default:
			return fmt.Errorf("%s must be a string", name)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		sub := fd.Message()
		if strings.HasPrefix(string(sub.FullName()), "google.protobuf.") {
			return nil // well-known types have their own JSON forms
		}
		obj, ok := val.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be an object", name)
		}
		return checkMessage(sub, obj, name+".")
	}
	return nil
}

func checkInt(val any, name string, bits int, signed bool) error {
	n, ok := val.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return fmt.Errorf("%s must be an integer", name)
	}
	var err error
	if signed {
		_, err = strconv.ParseInt(string(n), 10, bits)
	} else {
		if strings.HasPrefix(string(n), "-") {
			return fmt.Errorf("%s must not be negative", name)
		}
		_, err = strconv.ParseUint(string(n), 10, bits)
	}
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return fmt.Errorf("%s is out of range", name)
		}
		return fmt.Errorf("%s must be an integer", name)
	}
	return nil
}
