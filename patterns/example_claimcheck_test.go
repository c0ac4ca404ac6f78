package patterns_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// A ClaimCheck sends a body larger than the queue takes through S3 and
// resolves it on the other side; the message itself carries a pointer in
// the format of the AWS Extended Client libraries, so Java, Python and
// .NET services read it too.
func ExampleClaimCheck() {
	b, _ := backend.First()
	sqsClient, _ := exampleClients()
	bucket := "example-claims-" + fmt.Sprint(time.Now().UnixNano())
	s3Client := b.S3() // in your code: s3.NewFromConfig(cfg)
	_, _ = s3Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket})
	queueURL, done := exampleQueue(sqsClient, "scans", nil)
	defer done()
	defer func() { _, _ = s3Client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: &bucket}) }()

	cc, err := patterns.NewClaimCheck(s3Client, bucket)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := patterns.NewProducer(sqsClient, queueURL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
	scan := &patterns.Message{Body: []byte(strings.Repeat("pixel ", 500_000))} // 3 MB: above the 1 MiB SQS takes
	if err := p.Send(context.Background(), scan); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("offloaded to the bucket:", scan.Offloaded.Bucket == bucket)

	c, _ := patterns.NewConsumer(sqsClient, queueURL, func(o *patterns.ConsumerOptions) {
		o.WaitTime = time.Second
		o.ClaimCheck = cc
		o.Logger = slog.New(slog.DiscardHandler)
	})
	ctx, cancel := context.WithCancel(context.Background())
	_ = c.Run(ctx, func(_ context.Context, m *patterns.Message) error {
		fmt.Println("received", len(m.Body), "bytes")
		cancel()
		return nil
	})
	// Output:
	// offloaded to the bucket: true
	// received 3000000 bytes
}
