package backend

import "reflect"

// Capabilities names what a backend does differently from AWS, so that a
// test asks for a behaviour by name instead of testing the backend's name
// (gocloud's drivertest does the same). Each false entry is a deviation
// recorded in localstack/FIDELITY.md.
type Capabilities struct {
	// FIFOOrderAfterVisibilityExpiry: a FIFO group's messages come back in
	// order after a visibility timeout expires.
	FIFOOrderAfterVisibilityExpiry bool
	// FIFODedupAfterDelete: a deduplication id re-sent within five minutes
	// is deduplicated even after the first message was deleted.
	FIFODedupAfterDelete bool
	// RawDeliveryBinaryAttributes: SNS raw delivery carries Binary attributes.
	RawDeliveryBinaryAttributes bool
	// RejectsInvalidBody: an empty body or one with disallowed characters is refused.
	RejectsInvalidBody bool
	// AttributesCountInSize: attributes count toward the 1 MiB message limit.
	AttributesCountInSize bool
	// FIFOTopicToQueueWithoutContentDedup: a FIFO topic with content-based
	// deduplication delivers to a FIFO queue without it.
	FIFOTopicToQueueWithoutContentDedup bool
	// DeepQueues: receiving stays fast with thousands of messages queued
	// (moto's receive cost grows with queue depth).
	DeepQueues bool
	// SharesMachineWell: the backend keeps its pace while another backend's
	// subtest runs beside it. moto slows down under load until tests time
	// out (TestConcurrentPollers, TestCompetingConsumers on a clean 2-core
	// run), so its subtests run alone, before the others run side by side.
	SharesMachineWell bool
	// DynamoDB: the backend serves DynamoDB.
	DynamoDB bool
	// SignsHTTPNotifications: SNS signs what it POSTs to HTTP subscribers,
	// with a certificate it serves, and sends a SubscriptionConfirmation.
	SignsHTTPNotifications bool
	// HTTPNotificationAttributes: notifications POSTed to HTTP subscribers
	// carry the message attributes.
	HTTPNotificationAttributes bool
	// PublishIndependentOfHTTPSubscribers: a publish succeeds while an HTTP
	// subscriber refuses connections (delivery is asynchronous).
	PublishIndependentOfHTTPSubscribers bool
	// FilterWildcard: filter policies take "wildcard", also inside
	// "anything-but".
	FilterWildcard bool
	// FilterAnythingButSuffix: "anything-but": {"suffix": s} is accepted
	// and applied.
	FilterAnythingButSuffix bool
	// FilterDottedKeys: a body policy key matches as keys joined by dots
	// ({"a.b": ...} finds {"a":{"b":...}} and {"a.b":...}).
	FilterDottedKeys bool
	// FilterExistsLeafOnly: "exists": true in a body needs a non-null,
	// non-empty leaf value.
	FilterExistsLeafOnly bool
	// FIFOMoveTaskToSource: StartMessageMoveTask redrives a FIFO
	// dead-letter queue to its source without the source deduplicating the
	// messages against their first send (LocalStack re-sends the first
	// send's deduplication id, and drops what was sent less than five
	// minutes ago; moto has no move task).
	FIFOMoveTaskToSource bool
}

// allCaps is AWS: every behaviour as documented.
func allCaps() Capabilities {
	var c Capabilities
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		v.Field(i).SetBool(true)
	}
	return c
}

func capsFor(name string) Capabilities {
	switch name {
	case "aws":
		return allCaps()
	case "localstack":
		return Capabilities{
			FIFOOrderAfterVisibilityExpiry:      true,
			FIFODedupAfterDelete:                true,
			RawDeliveryBinaryAttributes:         true,
			RejectsInvalidBody:                  true,
			AttributesCountInSize:               true,
			FIFOTopicToQueueWithoutContentDedup: true,
			DeepQueues:                          true,
			SharesMachineWell:                   true,
			DynamoDB:                            true,
			SignsHTTPNotifications:              true,
			HTTPNotificationAttributes:          true,
			PublishIndependentOfHTTPSubscribers: true,
			FilterDottedKeys:                    true,
		}
	case "memory":
		// memaws follows AWS; it has no DynamoDB and no HTTP subscriptions
		// (it opens no sockets).
		c := allCaps()
		c.DynamoDB = false
		c.SignsHTTPNotifications, c.HTTPNotificationAttributes, c.PublishIndependentOfHTTPSubscribers = false, false, false
		return c
	case "moto":
		return Capabilities{DynamoDB: true}
	}
	return Capabilities{}
}
