package patterns

import (
	"context"
	"encoding/json"
	"fmt"
)

// One-way messaging: a Sender puts a message on a queue and goes on; a
// Receiver handles it later, in another process. Nobody replies. The queue
// decouples them in time: the receiver may be down while the sender sends.

// Sender sends one-way messages to a queue. It is a Producer with helpers
// for the common payloads.
type Sender struct {
	*Producer
}

// NewSender returns a Sender for queueURL.
func NewSender(client SQSSendAPI, queueURL string, optFns ...func(*ProducerOptions)) (*Sender, error) {
	p, err := NewProducer(client, queueURL, optFns...)
	if err != nil {
		return nil, err
	}
	return &Sender{Producer: p}, nil
}

// SendBody sends one message with body and the given String attributes
// (name, value pairs) and returns its message id.
func (s *Sender) SendBody(ctx context.Context, body []byte, attrs ...string) (string, error) {
	if len(attrs)%2 != 0 {
		return "", fmt.Errorf("%w: attributes come in name, value pairs", ErrInvalidMessage)
	}
	m := &Message{Body: body}
	for i := 0; i < len(attrs); i += 2 {
		m.SetAttr(attrs[i], attrs[i+1])
	}
	if err := s.Send(ctx, m); err != nil {
		return "", err
	}
	return m.ID, nil
}

// SendJSON sends v encoded as JSON and returns its message id.
func (s *Sender) SendJSON(ctx context.Context, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return s.SendBody(ctx, b)
}

// Receiver handles one-way messages from a queue. It is a Consumer.
type Receiver struct {
	*Consumer
}

// NewReceiver returns a Receiver of the queue at queueURL.
func NewReceiver(client SQSReceiveAPI, queueURL string, optFns ...func(*ConsumerOptions)) (*Receiver, error) {
	c, err := NewConsumer(client, queueURL, optFns...)
	if err != nil {
		return nil, err
	}
	return &Receiver{Consumer: c}, nil
}

// JSONHandler adapts a function of a typed payload to a Handler: the body
// is decoded as JSON into T. A body that does not decode is a failure (the
// message goes to the dead-letter queue after its retries), not a drop.
func JSONHandler[T any](fn func(ctx context.Context, v T, m *Message) error) Handler {
	return func(ctx context.Context, m *Message) error {
		var v T
		if err := json.Unmarshal(m.Body, &v); err != nil {
			return fmt.Errorf("%w: body is not the expected JSON: %v", ErrMalformedMessage, err)
		}
		return fn(ctx, v, m)
	}
}
