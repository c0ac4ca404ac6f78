package memaws_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/courier-aws/courier/memaws"
)

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func newBucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
}

func TestS3ObjectLifecycle(t *testing.T) {
	ctx := context.Background()
	mem := memaws.New()
	c := mem.S3()
	newBucket(t, c, "bucket1")

	put, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1"), Body: strings.NewReader("hello world"),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"who": "me"},
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if got := aws.ToString(put.ETag); got != `"5eb63bbbe01eeed093cb22bb8f5acdc3"` {
		t.Errorf("ETag = %s, want the quoted MD5", got)
	}
	if put.ChecksumCRC32 == nil {
		t.Errorf("PutObject returned no CRC32 (the SDK sends one by default)")
	}

	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	body, err := io.ReadAll(get.Body)
	if err != nil {
		t.Fatalf("read body (checksum validated by the SDK): %v", err)
	}
	if string(body) != "hello world" || aws.ToString(get.ContentType) != "text/plain" || get.Metadata["who"] != "me" {
		t.Errorf("GetObject = %q, %q, %v", body, aws.ToString(get.ContentType), get.Metadata)
	}
	if aws.ToString(get.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) {
		t.Errorf("GetObject checksum %s, put %s", aws.ToString(get.ChecksumCRC32), aws.ToString(put.ChecksumCRC32))
	}

	rg, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1"), Range: aws.String("bytes=6-")})
	if err != nil {
		t.Fatalf("GetObject range: %v", err)
	}
	part, _ := io.ReadAll(rg.Body)
	if string(part) != "world" || aws.ToString(rg.ContentRange) != "bytes 6-10/11" {
		t.Errorf("range = %q %q", part, aws.ToString(rg.ContentRange))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1"), Range: aws.String("bytes=20-")}); errorCode(err) != "InvalidRange" {
		t.Errorf("range past the end: %v, want InvalidRange", err)
	}

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1")})
	if err != nil || aws.ToInt64(head.ContentLength) != 11 || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
		t.Errorf("HeadObject = %+v, %v", head, err)
	}

	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1")}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1")})
	var nsk *types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Errorf("GetObject after delete: %v, want *types.NoSuchKey", err)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject after delete: %v, want *types.NotFound", err)
	}
	// Deleting what is not there succeeds, as on S3.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("dir/k 1")}); err != nil {
		t.Errorf("DeleteObject of a missing key: %v", err)
	}
}

func TestS3Errors(t *testing.T) {
	ctx := context.Background()
	mem := memaws.New()
	c := mem.S3()
	newBucket(t, c, "full")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"get from a missing bucket", func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")})
			return err
		}, "NoSuchBucket"},
		{"put to a missing bucket", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nope"), Key: aws.String("k"), Body: strings.NewReader("x")})
			return err
		}, "NoSuchBucket"},
		{"delete a bucket with objects", func() error {
			_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("full")})
			return err
		}, "BucketNotEmpty"},
		{"delete a missing bucket", func() error {
			_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("nope")})
			return err
		}, "NoSuchBucket"},
		{"list a missing bucket", func() error {
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nope")})
			var nsb *types.NoSuchBucket
			if !errors.As(err, &nsb) {
				t.Errorf("not *types.NoSuchBucket: %T", err)
			}
			return err
		}, "NoSuchBucket"},
		{"head a missing bucket", func() error {
			_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope")})
			return err
		}, "NotFound"},
		{"bad bucket name", func() error {
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Upper_Case")})
			return err
		}, "InvalidBucketName"},
		{"checksum mismatch", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("k2"), Body: strings.NewReader("x"),
				ChecksumCRC32: aws.String("AAAAAA==")})
			return err
		}, "BadDigest"},
		{"conditional write over an object", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String("k"), Body: strings.NewReader("y"),
				IfNoneMatch: aws.String("*")})
			return err
		}, "PreconditionFailed"},
		{"abort an unknown upload", func() error {
			_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String("k"), UploadId: aws.String("nope")})
			return err
		}, "NoSuchUpload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorCode(tt.call()); got != tt.code {
				t.Errorf("code %q, want %q", got, tt.code)
			}
		})
	}
}

func TestS3ListAndDeleteObjects(t *testing.T) {
	ctx := context.Background()
	c := memaws.New().S3()
	newBucket(t, c, "list")
	keys := []string{"a/1", "a/2", "a/b/3", "c", "d/4"}
	for _, k := range keys {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("list"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range out.Contents {
			got = append(got, aws.ToString(o.Key))
		}
	}
	if strings.Join(got, ",") != strings.Join(keys, ",") || pages != 3 {
		t.Errorf("paged listing = %v in %d pages", got, pages)
	}

	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), Prefix: aws.String("a/"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 2 || len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "a/b/" {
		t.Errorf("delimited listing: %d contents, prefixes %+v", len(out.Contents), out.CommonPrefixes)
	}

	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("list"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("a/1")}, {Key: aws.String("c")}, {Key: aws.String("missing")}},
	}})
	if err != nil {
		t.Fatalf("DeleteObjects: %v", err)
	}
	if len(del.Deleted) != 3 || len(del.Errors) != 0 {
		t.Errorf("DeleteObjects: %d deleted, %d errors", len(del.Deleted), len(del.Errors))
	}
	out, _ = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list")})
	if aws.ToInt32(out.KeyCount) != 3 {
		t.Errorf("after DeleteObjects: %d keys, want 3", aws.ToInt32(out.KeyCount))
	}
}

// The manager's Uploader sends bodies above its part size (5 MiB) as a
// multipart upload, with a CRC32 of each part; the Downloader reads ranges.
func TestS3MultipartUploader(t *testing.T) {
	ctx := context.Background()
	mem := memaws.New()
	c := mem.S3()
	newBucket(t, c, "big")
	body := make([]byte, 11<<20)
	for i := range body {
		body[i] = byte(i * 7 % 251)
	}
	up, err := manager.NewUploader(c).Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("big"), Key: aws.String("blob"), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if !strings.HasSuffix(aws.ToString(up.ETag), `-3"`) {
		t.Errorf("ETag %s: want a multipart ETag of 3 parts", aws.ToString(up.ETag))
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("blob")},
		func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetObject: %d bytes, equal %v, %v", len(got), bytes.Equal(got, body), err)
	}
	if aws.ToInt32(get.PartsCount) != 0 && aws.ToInt32(get.PartsCount) != 3 {
		t.Errorf("PartsCount %d", aws.ToInt32(get.PartsCount))
	}

	buf := manager.NewWriteAtBuffer(nil)
	n, err := manager.NewDownloader(c, func(d *manager.Downloader) { d.PartSize = 4 << 20 }).Download(ctx, buf, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("blob")})
	if err != nil || n != int64(len(body)) || !bytes.Equal(buf.Bytes(), body) {
		t.Errorf("Download: %d bytes, %v", n, err)
	}

	// An upload left incomplete holds its parts until aborted.
	cu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("half")})
	if err != nil {
		t.Fatal(err)
	}
	small, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("half"), UploadId: cu.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("small")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("half"), UploadId: cu.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("tail")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("half"), UploadId: cu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: small.ETag}, {PartNumber: aws.Int32(2), ETag: aws.String(`"0"`)}}}})
	if errorCode(err) != "EntityTooSmall" && errorCode(err) != "InvalidPart" {
		t.Errorf("Complete with a small first part and a wrong ETag: %v", err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("half"), UploadId: cu.UploadId}); err != nil {
		t.Errorf("Abort: %v", err)
	}
}

func TestS3VirtualHostedAddressing(t *testing.T) {
	ctx := context.Background()
	mem := memaws.New()
	c := s3.NewFromConfig(mem.Config()) // virtual-hosted: bucket.memaws.invalid
	newBucket(t, c, "vhost")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	// The same object, path-style.
	out, err := mem.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(out.Body); string(b) != "v" {
		t.Errorf("body %q", b)
	}
}

func TestS3ByteCap(t *testing.T) {
	ctx := context.Background()
	mem := memaws.New(func(o *memaws.Options) { o.MaxObjectBytes = 1000 })
	c := mem.S3()
	newBucket(t, c, "cap")
	put := func(key string, n int) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cap"), Key: aws.String(key), Body: bytes.NewReader(make([]byte, n))})
		return err
	}
	if err := put("a", 600); err != nil {
		t.Fatal(err)
	}
	if err := put("b", 600); errorCode(err) != "StorageQuotaExceeded" {
		t.Fatalf("over the cap: %v", err)
	}
	if err := put("a", 900); err != nil { // replacing frees the old bytes
		t.Fatalf("replace within the cap: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("cap"), Key: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if err := put("b", 1000); err != nil {
		t.Fatalf("after delete: %v", err)
	}
}

// A PutObject whose response is lost took effect; the SDK's retry puts the
// same bytes again.
func TestS3LostResponse(t *testing.T) {
	ctx := context.Background()
	lost := 0
	mem := memaws.New(func(o *memaws.Options) {
		o.Faults = memaws.InjectorFunc(func(c memaws.Call) memaws.Fault {
			if c.Operation == "PutObject" && c.Attempt == 1 {
				lost++
				return memaws.Fault{LoseResponse: true}
			}
			return memaws.Fault{}
		})
	})
	c := mem.S3()
	newBucket(t, c, "lost")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lost"), Key: aws.String("k"), Body: strings.NewReader("once")}); err != nil {
		t.Fatalf("PutObject retried: %v", err)
	}
	if lost != 1 {
		t.Errorf("%d responses lost, want 1", lost)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lost"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(out.Body); string(b) != "once" {
		t.Errorf("body %q", b)
	}
}

// Over https the SDK streams the body aws-chunked with its CRC32 in a
// trailer; the Server decodes it and checks the trailer.
func TestS3AWSChunkedTrailer(t *testing.T) {
	ctx := context.Background()
	mem := memaws.New()
	c := s3.NewFromConfig(mem.Config(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String("https://memaws.invalid")
		o.UsePathStyle = true
	})
	newBucket(t, c, "chunked")
	body := strings.Repeat("chunk me ", 100000)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("chunked"), Key: aws.String("k"), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("chunked"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body)
	if err != nil || string(got) != body {
		t.Fatalf("GetObject: %d bytes, %v", len(got), err)
	}
	if aws.ToString(get.ChecksumCRC32) == "" || aws.ToString(get.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) {
		t.Errorf("checksum: get %q, put %q", aws.ToString(get.ChecksumCRC32), aws.ToString(put.ChecksumCRC32))
	}
	if get.ContentEncoding != nil {
		t.Errorf("Content-Encoding %q kept: aws-chunked is the transfer's, not the object's", aws.ToString(get.ContentEncoding))
	}
}
