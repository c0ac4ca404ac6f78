package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/courier-aws/courier/patterns"
)

// S3 returns an S3 client for the backend, path-style (an emulator's
// endpoint is an IP address, which virtual-hosted style cannot address:
// moto would read "127" as the bucket).
func (b *Backend) S3(counters ...*patterns.RequestCounter) *s3.Client {
	return s3.NewFromConfig(b.Config(), func(o *s3.Options) {
		o.UsePathStyle = b.Name != "aws"
		for _, c := range counters {
			o.APIOptions = append(o.APIOptions, c.Install)
		}
	})
}

// CreateBucket makes a uniquely named bucket, emptied and removed when the
// test ends.
func (b *Backend) CreateBucket(t testing.TB) string {
	t.Helper()
	client := b.S3()
	name := strings.ToLower(UniqueName(t))
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	name = strings.Trim(strings.ReplaceAll(name, "_", "-"), "-")
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", name, b.Name, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range out.Contents {
				_, _ = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		_, _ = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	return name
}

// Objects lists the keys in a bucket.
func (b *Backend) Objects(t testing.TB, bucket string) []string {
	t.Helper()
	out, err := b.S3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list %s: %v", bucket, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
