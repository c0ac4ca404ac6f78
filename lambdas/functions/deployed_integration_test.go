package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/internal/backend"
)

// The deployed worker function (CourierCompute, run by LocalStack's courier
// executor) handles the jobs LocalStack's event source mapping feeds it
// from the Jobs queue, and a poison job reaches the DLQ after the queue's
// maxReceiveCount, each retry spaced by the function's retry backoff.
func TestDeployedWorker(t *testing.T) {
	b := backend.Require(t, "localstack")
	out := deployedOutputs(t, b)
	ctx := context.Background()
	sq := b.SQS()
	jobs := out["JobsQueueUrl"]
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(jobs), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Skipf("the deployed Jobs queue is gone (run make deploy-local): %v", err)
	}
	var redrive struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &redrive); err != nil {
		t.Fatalf("Jobs queue RedrivePolicy %q: %v", attrs.Attributes["RedrivePolicy"], err)
	}
	maps, err := lambda.NewFromConfig(b.Config()).ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{
		EventSourceArn: aws.String(attrs.Attributes["QueueArn"]),
	})
	if err != nil || len(maps.EventSourceMappings) == 0 {
		t.Skipf("CourierCompute is not deployed (no event source mapping on the Jobs queue; run make deploy-local): %v", err)
	}
	dlqName := redrive.DeadLetterTargetArn[strings.LastIndex(redrive.DeadLetterTargetArn, ":")+1:]
	dlq, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(dlqName)})
	if err != nil {
		t.Fatal(err)
	}

	run := backend.UniqueName(t)
	const n = 5
	ids := map[string]string{} // message id -> body
	for i := range n + 1 {
		body := fmt.Sprintf(`{"run":%q,"job":%d}`, run, i)
		if i == n {
			body = "poison " + run // not a JSON object: the worker fails it every time
		}
		res, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(jobs), MessageBody: aws.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		ids[aws.ToString(res.MessageId)] = body
	}

	// The jobs are deleted once handled; only the poison job stays, until
	// it is moved to the DLQ (5 s, 10 s, 20 s, 40 s of backoff: about 75 s
	// for maxReceiveCount 5, with jitter).
	deadline := time.Now().Add(150 * time.Second)
	var dead []types.Message
	for time.Now().Before(deadline) {
		r, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Messages {
			if _, ours := ids[aws.ToString(m.MessageId)]; ours || strings.Contains(aws.ToString(m.Body), run) {
				dead = append(dead, m)
				_, _ = sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: dlq.QueueUrl, ReceiptHandle: m.ReceiptHandle})
			}
		}
		if len(dead) > 0 {
			break
		}
	}
	if len(dead) != 1 || aws.ToString(dead[0].Body) != "poison "+run {
		var bodies []string
		for _, m := range dead {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		t.Fatalf("DLQ got %q, want only the poison job", bodies)
	}
	if got := dead[0].Attributes["ApproximateReceiveCount"]; got != fmt.Sprint(redrive.MaxReceiveCount) {
		t.Logf("the poison job was received %s times (maxReceiveCount %v)", got, redrive.MaxReceiveCount)
	}
	// The good jobs were handled: nothing of this run is left in the queue.
	q, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(jobs),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	if q.Attributes["ApproximateNumberOfMessages"] != "0" || q.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("Jobs queue still holds messages: %v", q.Attributes)
	}
}
