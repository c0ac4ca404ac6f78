package patterns_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/courier-aws/courier/patterns"
)

// A consumer's ClaimCheck says where pointers may lead and whether the
// consumer removes objects; a message decides neither. Here the consumer
// of one queue reads its own bucket and the bucket a Java service offloads
// to, at most 64 MiB a message, and removes its own objects after delete.
// A pointer to any other bucket fails the message (it ends in the DLQ)
// before any S3 request.
func ExampleClaimCheckOptions() {
	s3Client := s3.New(s3.Options{Region: "eu-west-1"}) // in your code: s3.NewFromConfig(cfg)
	cc, err := patterns.NewClaimCheck(s3Client, "scans-bucket", func(o *patterns.ClaimCheckOptions) {
		o.ReadBuckets = []string{"java-payloads"}
		o.MaxPayloadBytes = 64 << 20
		o.RemoveAfterDelete = true // this queue alone receives what scans-bucket holds
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A Consumer of the scans queue reads pointers with it:
	//	patterns.NewConsumer(sqsClient, scansQueueURL, func(o *patterns.ConsumerOptions) { o.ClaimCheck = cc })
	_ = patterns.ConsumerOptions{ClaimCheck: cc}

	m := &patterns.Message{
		ID:         "m-1",
		Body:       []byte(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"someone-elses","s3Key":"k"}]`),
		Attributes: map[string]patterns.Attribute{patterns.ExtendedPayloadSizeAttribute: patterns.NumberAttr(5)},
	}
	err = cc.Resolve(context.Background(), m)
	fmt.Println(errors.Is(err, patterns.ErrPayloadNotAllowed))
	// Output: true
}
