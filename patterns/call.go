package patterns

import (
	"context"
	"encoding/json"
	"fmt"
)

// Codec turns typed requests and replies into message bodies and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json.
type JSONCodec struct{}

func (JSONCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// CallOption configures Call and HandleCall.
type CallOption = func(*CallOptions)

// CallOptions configures Call and HandleCall.
type CallOptions struct {
	// Codec turns values into bodies and back (default JSONCodec).
	// Requester and responder must agree on it.
	Codec Codec
	// Prepare, in order, set what else the request message (Call) or the
	// reply (HandleCall) carries: attributes, headers, a FIFO GroupID.
	Prepare []func(*Message)
}

func newCallOptions(opts []CallOption) CallOptions {
	var o CallOptions
	for _, fn := range opts {
		fn(&o)
	}
	if o.Codec == nil {
		o.Codec = JSONCodec{}
	}
	return o
}

// WithCodec sets the codec of the bodies (default JSONCodec). Requester and
// responder must agree on it.
func WithCodec(c Codec) CallOption { return func(o *CallOptions) { o.Codec = c } }

// WithMessage lets fn set what else the request message (Call) or the
// reply (HandleCall) carries: attributes, headers, a FIFO GroupID.
func WithMessage(fn func(m *Message)) CallOption {
	return func(o *CallOptions) { o.Prepare = append(o.Prepare, fn) }
}

// Call sends req, encoded with the codec, as a request to queueURL and
// decodes the reply into a Resp. Errors are Request's, plus
// ErrInvalidMessage when req does not encode and ErrMalformedMessage when
// the reply does not decode.
func Call[Req, Resp any](ctx context.Context, r *Requester, queueURL string, req Req, opts ...CallOption) (Resp, error) {
	var resp Resp
	o := newCallOptions(opts)
	body, err := o.Codec.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("%w: request does not encode: %v", ErrInvalidMessage, err)
	}
	m := &Message{Body: body}
	for _, fn := range o.Prepare {
		fn(m)
	}
	reply, err := r.Request(ctx, queueURL, m)
	if err != nil {
		return resp, err
	}
	if err := o.Codec.Unmarshal(reply.Body, &resp); err != nil {
		return resp, fmt.Errorf("%w: reply from %s does not decode: %v", ErrMalformedMessage, queueURL, err)
	}
	return resp, nil
}

// HandleCall adapts a typed function to a RequestHandler, the responder's
// side of Call: the request body is decoded into a Req (one that does not
// decode is answered with an error wrapping ErrMalformedMessage), and the
// Resp is encoded as the reply.
func HandleCall[Req, Resp any](fn func(ctx context.Context, req Req) (Resp, error), opts ...CallOption) RequestHandler {
	o := newCallOptions(opts)
	return func(ctx context.Context, m *Message) (*Message, error) {
		var req Req
		if err := o.Codec.Unmarshal(m.Body, &req); err != nil {
			return nil, fmt.Errorf("%w: request does not decode: %v", ErrMalformedMessage, err)
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return nil, err
		}
		body, err := o.Codec.Marshal(resp)
		if err != nil {
			return nil, fmt.Errorf("reply does not encode: %v", err)
		}
		reply := &Message{Body: body}
		for _, fn := range o.Prepare {
			fn(reply)
		}
		return reply, nil
	}
}
