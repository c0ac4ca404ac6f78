package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/courier-aws/courier/infra/internal/infratest"
)

func TestClaimCheckBucket(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["ClaimCheck"]
	private := map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}

	// The default bucket: SSE-S3, private, logged, payloads expire after
	// the longest SQS retention plus a day.
	payloads := idOf(st, f.claims.Bucket.BucketName())
	f.has(t, "ClaimCheck", "AWS::S3::Bucket", map[string]any{
		"PublicAccessBlockConfiguration": private,
		"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
			map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
		}},
		"LifecycleConfiguration": map[string]any{"Rules": []any{map[string]any{
			"Id": "expire-payloads", "Status": "Enabled", "ExpirationInDays": 15,
			"AbortIncompleteMultipartUpload": map[string]any{"DaysAfterInitiation": 1},
		}}},
		"LoggingConfiguration": map[string]any{"LogFilePrefix": "Payloads/"},
	})
	buckets := infratest.Resources(f.templates["ClaimCheck"], "AWS::S3::Bucket")
	if dp := buckets[payloads]["DeletionPolicy"]; dp != "Retain" {
		t.Errorf("payload bucket DeletionPolicy %v, want Retain by default", dp)
	}
	// Its own access log bucket, and the KMS bucket logs into the first.
	f.count(t, "ClaimCheck", "AWS::S3::Bucket", 3)
	f.has(t, "ClaimCheck", "AWS::S3::Bucket", map[string]any{
		"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{
			"BucketKeyEnabled":              true,
			"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": assertions.Match_AnyValue()},
		}}},
		"LifecycleConfiguration": map[string]any{"Rules": []any{map[string]any{"ExpirationInDays": 30}}},
		"LoggingConfiguration":   map[string]any{"DestinationBucketName": ref(payloads)},
	})
	// Every bucket refuses requests without TLS.
	tls := 0
	for _, p := range infratest.Resources(f.templates["ClaimCheck"], "AWS::S3::BucketPolicy") {
		doc, _ := infratest.Props(p)["PolicyDocument"].(map[string]any)
		sts, _ := doc["Statement"].([]any)
		for _, s := range sts {
			m, _ := s.(map[string]any)
			c, _ := m["Condition"].(map[string]any)
			b, _ := c["Bool"].(map[string]any)
			if m["Effect"] == "Deny" && b["aws:SecureTransport"] == "false" {
				tls++
			}
		}
	}
	if tls != 3 {
		t.Errorf("%d buckets deny requests without TLS, want 3", tls)
	}

	// Grants name exactly what patterns.ClaimCheck calls.
	for _, c := range []struct {
		role string
		want []string
	}{
		{idOf(st, f.claimWriter.RoleName()), []string{"s3:AbortMultipartUpload", "s3:PutObject"}},
		{idOf(st, f.claimReader.RoleName()), []string{"s3:DeleteObject", "s3:GetObject"}},
		{idOf(st, f.kmsClaimWriter.RoleName()), []string{"kms:Decrypt", "kms:GenerateDataKey", "s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"}},
	} {
		if got := policyActions(t, f.templates["ClaimCheck"], c.role); !slices.Equal(got, c.want) {
			t.Errorf("%s allows %v, want exactly %v", c.role, got, c.want)
		}
	}
	f.has(t, "ClaimCheck", "AWS::IAM::Policy", map[string]any{
		"PolicyDocument": stmt(map[string]any{
			"Action":   []any{"s3:DeleteObject", "s3:GetObject"},
			"Resource": map[string]any{"Fn::Join": []any{"", []any{arn(payloads), "/*"}}},
		}),
	})
}
