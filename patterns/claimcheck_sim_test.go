package patterns_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
)

func memClaimSetup(t *testing.T, mem *memaws.Server) (queueURL, bucket string) {
	t.Helper()
	ctx := context.Background()
	q, err := mem.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("scans")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.S3().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("claims")}); err != nil {
		t.Fatal(err)
	}
	return *q.QueueUrl, "claims"
}

// When one upload of a Send fails, nothing of the Send goes to SQS, and
// the SendError names every message, not only the one whose upload
// failed. Found by internal/sim (seed 40001: three messages reported sent
// were never stored).
func TestClaimCheckUploadFailureReportsWholeSend(t *testing.T) {
	mem := memaws.New()
	url, bucket := memClaimSetup(t, mem)
	failB := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
		if c.Operation == "PutObject" && bytes.Contains(c.Body, []byte("body-b")) {
			return memaws.Fault{Err: memaws.InternalError()}
		}
		return memaws.Fault{}
	})
	cc, err := patterns.NewClaimCheck(mem.S3(memaws.WithFaults(failB), func(o *memaws.ClientOptions) { o.RetryMaxAttempts = 1 }), bucket,
		func(o *patterns.ClaimCheckOptions) { o.Always = true })
	if err != nil {
		t.Fatal(err)
	}
	p, err := patterns.NewProducer(mem.SQS(), url, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*patterns.Message{{Body: []byte("body-a")}, {Body: []byte("body-b")}, {Body: []byte("body-c")}}
	err = p.Send(context.Background(), msgs...)
	var se *patterns.SendError
	if !errors.As(err, &se) {
		t.Fatalf("Send: %v, want a *SendError", err)
	}
	reported := map[*patterns.Message]bool{}
	for _, f := range se.Failed {
		reported[f.Message] = true
	}
	stored := mem.Messages(url)
	for _, m := range msgs {
		if !reported[m] && len(stored) == 0 {
			t.Errorf("%s: not reported failed, and nothing was stored", m.Body)
		}
	}
	if !errors.Is(err, patterns.ErrSendAborted) {
		t.Errorf("Send: %v, want the others marked ErrSendAborted", err)
	}
}

// A payload read that hangs ends at ClaimCheckOptions.CallTimeout and
// fails the message, instead of holding it (its visibility extended by
// the heartbeat) for ever. Found by internal/sim (seed 40001).
func TestClaimCheckResolveHasDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memaws.New()
		url, bucket := memClaimSetup(t, mem)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		writer, err := patterns.NewClaimCheck(mem.S3(), bucket, func(o *patterns.ClaimCheckOptions) { o.Always = true })
		if err != nil {
			t.Fatal(err)
		}
		p, _ := patterns.NewProducer(mem.SQS(), url, func(o *patterns.ProducerOptions) { o.ClaimCheck = writer })
		if err := p.Send(ctx, &patterns.Message{Body: []byte("scan")}); err != nil {
			t.Fatal(err)
		}
		hang := memaws.InjectorFunc(func(c memaws.Call) memaws.Fault { return memaws.Fault{Hang: c.Operation == "GetObject"} })
		reader, err := patterns.NewClaimCheck(mem.S3(memaws.WithFaults(hang)), bucket, func(o *patterns.ClaimCheckOptions) { o.CallTimeout = 10 * time.Second })
		if err != nil {
			t.Fatal(err)
		}
		c, err := patterns.NewConsumer(mem.SQS(), url, func(o *patterns.ConsumerOptions) {
			o.ClaimCheck = reader
			o.Logger = slog.New(slog.DiscardHandler)
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, func(context.Context, *patterns.Message) error { return nil }) }()
		time.Sleep(time.Minute)
		if c.Stats().Failed == 0 {
			t.Errorf("a minute after a payload read hung, the message has not failed (CallTimeout 10s): %+v", c.Stats())
		}
		cancel()
		<-done
	})
}
