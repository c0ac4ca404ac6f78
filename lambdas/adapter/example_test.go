package adapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/lambdas/adapter"
	"github.com/courier-aws/courier/patterns"
)

// The same patterns.Handler a Consumer runs, as a Lambda function on an
// SQS queue. In main: lambda.Start(adapter.SQSHandler(handle)). Here it is
// given the event Lambda would send for a FIFO queue, and a2 fails: as AWS
// asks for FIFO queues, the records after it are not run but reported, so
// that SQS delivers them again, in order, after a2.
func ExampleSQSHandler() {
	handle := func(ctx context.Context, m *patterns.Message) error {
		if string(m.Body) == "a2" {
			return errors.New("a2 cannot be handled yet")
		}
		fmt.Println("handled", string(m.Body), "of group", m.GroupID)
		return nil
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := adapter.SQSHandler(handle, adapter.WithLogger(quiet))

	data, _ := os.ReadFile("testdata/sqs-fifo.json")
	var event events.SQSEvent
	_ = json.Unmarshal(data, &event)
	resp, _ := h(context.Background(), event)
	for _, f := range resp.BatchItemFailures {
		fmt.Println("delivered again:", f.ItemIdentifier)
	}
	// Output:
	// handled a1 of group g1
	// handled b1 of group g2
	// delivered again: a2
	// delivered again: b2
	// delivered again: a3
}
