package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// ExponentialBackoff spaces the retries of a failing message: the n-th
// receive waits between half and all of base·2^(n-1), capped. Given to
// ConsumerOptions.Backoff (or the Lambda adapter's Options.Backoff), it sets
// a failed message's visibility timeout instead of the queue's.
func ExampleExponentialBackoff() {
	backoff := patterns.ExponentialBackoff(time.Second, time.Minute)
	for receive := 1; receive <= 8; receive++ {
		d := backoff(receive)
		full := min(time.Second<<(receive-1), time.Minute)
		fmt.Printf("receive %d: within [%v, %v]: %v\n", receive, full/2, full, d >= full/2 && d <= full)
	}
	// Output:
	// receive 1: within [500ms, 1s]: true
	// receive 2: within [1s, 2s]: true
	// receive 3: within [2s, 4s]: true
	// receive 4: within [4s, 8s]: true
	// receive 5: within [8s, 16s]: true
	// receive 6: within [16s, 32s]: true
	// receive 7: within [30s, 1m0s]: true
	// receive 8: within [30s, 1m0s]: true
}

// SQS and SNS take ten message attributes; courier packs its own headers
// into one. A message that would need more is refused before any request,
// with an error that names the limit.
func ExampleErrTooManyAttributes() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "attributes", nil)
	defer done()
	p, _ := patterns.NewProducer(sqsClient, queueURL)
	m := &patterns.Message{Body: []byte("order"), CorrelationID: "c-1"} // the correlation id travels in courier's attribute
	for i := range 10 {
		m.SetAttr("a"+strconv.Itoa(i), "v")
	}
	err := p.Send(context.Background(), m)
	fmt.Println(errors.Is(err, patterns.ErrTooManyAttributes))
	fmt.Println(strings.ReplaceAll(err.Error(), queueURL, "QUEUE"))
	// Output:
	// true
	// courier: SendMessageBatch QUEUE: 1 message(s) not sent; [0] courier: too many message attributes: 11 attributes (1 of them courier's), the limit is 10
}

// On a standard queue, a tenant key as MessageGroupId makes it an SQS fair
// queue: one noisy tenant's backlog no longer delays the others.
func ExampleProducerOptions_tenantKey() {
	sqsClient, _ := exampleClients()
	queueURL, done := exampleQueue(sqsClient, "fair", nil)
	defer done()
	p, _ := patterns.NewProducer(sqsClient, queueURL, func(o *patterns.ProducerOptions) {
		o.TenantKey = func(m *patterns.Message) string { return m.Attr("tenant") }
	})
	m := &patterns.Message{Body: []byte("render report")}
	m.SetAttr("tenant", "acme")
	err := p.Send(context.Background(), m)
	fmt.Println(m.GroupID, err)
	// Output:
	// acme <nil>
}
