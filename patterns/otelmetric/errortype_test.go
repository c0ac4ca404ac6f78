package otelmetric

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/courier-aws/courier/patterns"
)

type validationError struct{}

func (validationError) Error() string { return "invalid order" }

func TestErrorType(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), "_OTHER"},
		{fmt.Errorf("wrapped: %w", errors.New("plain")), "_OTHER"},
		{validationError{}, "otelmetric.validationError"},
		{fmt.Errorf("handler: %w", validationError{}), "otelmetric.validationError"},
		{fmt.Errorf("send: %w", throttled), "ThrottlingException"},
		{fmt.Errorf("courier: %w: %w", patterns.ErrTimeout, context.DeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{&patterns.RemoteError{Message: "no"}, "remote_error"},
		{&patterns.SendError{Failed: []patterns.FailedEntry{
			{Index: 0, Err: patterns.ErrSendAborted},
			{Index: 1, Err: fmt.Errorf("%w: 300 KiB", patterns.ErrMessageTooLarge)},
		}}, "message_too_large"},
		{&patterns.SendError{Failed: []patterns.FailedEntry{{Index: 0, Code: "InvalidParameterValue", Err: errors.New("bad")}}}, "InvalidParameterValue"},
		{&patterns.SendError{Failed: []patterns.FailedEntry{{Index: 0, Err: patterns.ErrSendAborted}}}, "send_aborted"},
	} {
		if got := errorType(tc.err); got != tc.want {
			t.Errorf("errorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDestination(t *testing.T) {
	m := &Metrics{temporary: []string{patterns.DefaultReplyQueuePrefix}}
	for dest, want := range map[string]string{
		"https://sqs.us-east-1.amazonaws.com/123456789012/orders":                   "messaging.system=aws_sqs,messaging.destination.name=orders",
		"http://localhost:4566/000000000000/orders.fifo":                            "messaging.system=aws_sqs,messaging.destination.name=orders.fifo",
		"arn:aws:sns:us-east-1:123456789012:events":                                 "messaging.system=aws_sns,messaging.destination.name=events",
		"arn:aws:sqs:us-east-1:123456789012:jobs":                                   "messaging.system=aws_sqs,messaging.destination.name=jobs",
		"https://sqs.us-east-1.amazonaws.com/123456789012/courier-reply-0a1b2c3d4e": "messaging.system=aws_sqs,messaging.destination.template=courier-reply-*,messaging.destination.temporary=true",
		"": "messaging.system=aws_sqs",
	} {
		got := ""
		for i, kv := range m.destination(dest) {
			if i > 0 {
				got += ","
			}
			got += string(kv.Key) + "=" + kv.Value.Emit()
		}
		if got != want {
			t.Errorf("destination(%q) = %s, want %s", dest, got, want)
		}
	}
}
