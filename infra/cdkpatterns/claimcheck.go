package cdkpatterns

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// DefaultClaimCheckExpiry: how long an offloaded payload stays without a
// KeepObjects-style delete. SQS keeps a message at most 14 days, and a
// standard queue's DLQ counts from the first enqueue, so after 15 days no
// message can point at the object any more.
const DefaultClaimCheckExpiry = 15

// ClaimCheckBucketProps shapes a claim-check bucket.
type ClaimCheckBucketProps struct {
	// ExpiryDays: the lifecycle rule removes payloads this many days after
	// they were written (default DefaultClaimCheckExpiry). Make it longer
	// than the retention of every queue, DLQs included, that receives
	// pointers into this bucket (a FIFO DLQ restarts the clock on
	// redrive).
	ExpiryDays int
	// Key encrypts the payloads with a customer managed key; nil: S3
	// managed keys (SSE-S3).
	Key awskms.IKey
	// AccessLogs receives the bucket's server access logs; nil: a log
	// bucket of its own (SSE-S3, TLS only, logs kept 90 days).
	AccessLogs awss3.IBucket
	// RemovalPolicy: default RETAIN.
	RemovalPolicy awscdk.RemovalPolicy
}

// ClaimCheckBucket holds the payloads patterns.ClaimCheck offloads. A
// payload published to a topic is shared by every subscription, so no
// consumer may delete it; a payload sent to one queue is deleted by the
// consumer after the message (ClaimCheck's default). The lifecycle rule
// removes what is left either way: shared payloads, and those of messages
// that expired or whose consumer kept them (KeepObjects).
type ClaimCheckBucket struct {
	Bucket awss3.Bucket
	key    awskms.IKey
	id     string
}

// NewClaimCheckBucket provisions a private, TLS-only, encrypted bucket
// with the expiry rule (and abandoned multipart uploads cleaned up after
// a day).
func NewClaimCheckBucket(scope constructs.Construct, id string, props *ClaimCheckBucketProps) ClaimCheckBucket {
	p := ClaimCheckBucketProps{}
	if props != nil {
		p = *props
	}
	if p.ExpiryDays <= 0 {
		p.ExpiryDays = DefaultClaimCheckExpiry
	}
	removal := awscdk.RemovalPolicy_RETAIN
	if p.RemovalPolicy != "" {
		removal = p.RemovalPolicy
	}
	logs := p.AccessLogs
	if logs == nil {
		own := awss3.NewBucket(scope, jsii.String(id+"AccessLogs"), &awss3.BucketProps{
			BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
			Encryption:        awss3.BucketEncryption_S3_MANAGED,
			EnforceSSL:        jsii.Bool(true),
			ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_PREFERRED,
			RemovalPolicy:     removal,
			LifecycleRules:    &[]*awss3.LifecycleRule{{Id: jsii.String("expire-logs"), Expiration: awscdk.Duration_Days(jsii.Number(90))}},
		})
		cdknag.NagSuppressions_AddResourceSuppressions(own, &[]*cdknag.NagPackSuppression{{
			Id:     jsii.String("AwsSolutions-S1"),
			Reason: jsii.String("This is the access log bucket of the claim-check bucket; logging it into itself would loop."),
		}}, jsii.Bool(false))
		logs = own
	}
	bp := &awss3.BucketProps{
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:             jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: logs,
		ServerAccessLogsPrefix: jsii.String(id + "/"),
		RemovalPolicy:          removal,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("expire-payloads"),
			Expiration:                          awscdk.Duration_Days(jsii.Number(float64(p.ExpiryDays))),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
		}},
	}
	if p.Key != nil {
		bp.Encryption = awss3.BucketEncryption_KMS
		bp.EncryptionKey = p.Key
		bp.BucketKeyEnabled = jsii.Bool(true)
	}
	return ClaimCheckBucket{Bucket: awss3.NewBucket(scope, jsii.String(id), bp), key: p.Key, id: id}
}

// GrantWrite lets grantee offload payloads (a Producer or Publisher with
// ClaimCheck): PutObject, which also covers the multipart upload
// manager.Uploader does for large bodies, and AbortMultipartUpload for
// one that failed.
func (b ClaimCheckBucket) GrantWrite(grantee awsiam.IGrantable) {
	grant(grantee, []string{"s3:PutObject", "s3:AbortMultipartUpload"}, b.objects())
	b.suppressObjectWildcard(grantee)
	grantKey(grantee, b.key)
}

// GrantRead lets grantee resolve pointers (a Consumer or Lambda adapter
// with ClaimCheck and KeepObjects, as a topic's subscribers are): GetObject.
func (b ClaimCheckBucket) GrantRead(grantee awsiam.IGrantable) {
	b.grantRead(grantee, "s3:GetObject")
}

// GrantReadDelete lets grantee resolve pointers and remove the payloads
// of single-queue messages after their delete (ClaimCheck's default):
// GetObject and DeleteObject.
func (b ClaimCheckBucket) GrantReadDelete(grantee awsiam.IGrantable) {
	b.grantRead(grantee, "s3:GetObject", "s3:DeleteObject")
}

func (b ClaimCheckBucket) grantRead(grantee awsiam.IGrantable, actions ...string) {
	grant(grantee, actions, b.objects())
	b.suppressObjectWildcard(grantee)
	if b.key != nil {
		grant(grantee, []string{"kms:Decrypt"}, *b.key.KeyArn())
	}
}

// suppressObjectWildcard: object keys are random ids, so the grant names
// every object of this bucket (bucket/*), not one. The finding names the
// bucket by its logical id (<Id1234ABCD.Arn>), or by its export when the
// grantee is in another stack (...FnGetAttId1234ABCDArn...).
func (b ClaimCheckBucket) suppressObjectWildcard(grantee awsiam.IGrantable) {
	c, ok := grantee.(constructs.IConstruct)
	if !ok {
		return
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("Claim-check payloads have random keys (patterns.ClaimCheck): the grant covers the objects of this one bucket, bucket/*, with named actions only."),
		AppliesTo: &[]interface{}{&cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::(<|.*FnGetAtt)[A-Za-z0-9]*" + b.id + "[0-9A-F]{8}\\.?Arn.*\\/\\*$/")}},
	}}, jsii.Bool(true))
}

func (b ClaimCheckBucket) objects() string { return *b.Bucket.ArnForObjects(jsii.String("*")) }
