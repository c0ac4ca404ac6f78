package patterns_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

// A FIFO batch whose response is lost after SQS stored some entries and
// failed an earlier one of the same group must not be sent again by the
// SDK's retryer: the resend would store the failed one behind the later
// ones. Found by internal/sim (fifo scenarios, seeds 5372, 6947, ...).
func TestFIFOBatchLostResponseKeepsGroupOrder(t *testing.T) {
	mem := memaws.New()
	ctx := context.Background()
	q, err := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders.fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	inj := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
		if c.Operation == "SendMessageBatch" && c.Attempt == 1 {
			return memaws.Fault{FailEntries: map[int]memaws.EntryError{1: {Code: "InternalError", Message: "injected"}}, LoseResponse: true}
		}
		return memaws.Fault{}
	})
	p, err := patterns.NewProducer(mem.SQS(memaws.WithFaults(inj)), *q.QueueUrl)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*patterns.Message{
		{Body: []byte("a0"), GroupID: "a"}, {Body: []byte("a1"), GroupID: "a"}, {Body: []byte("a2"), GroupID: "a"},
	}
	sendErr := p.Send(ctx, msgs...)
	var stored []string
	for {
		out, err := mem.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			stored = append(stored, aws.ToString(m.Body))
			if _, err := mem.SQS().DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.IsSorted(stored) {
		t.Errorf("group stored out of order: %v (Send: %v)", stored, sendErr)
	}
	if sendErr == nil && len(stored) != 3 {
		t.Errorf("Send reported all sent; stored %v", stored)
	}
}
