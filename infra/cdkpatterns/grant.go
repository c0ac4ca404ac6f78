package cdkpatterns

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

// The grants here name exact actions. CDK's own grantSendMessages and
// grantPublish add kms:ReEncrypt* and kms:GenerateDataKey* for a KMS key,
// and sqs:GetQueueAttributes/GetQueueUrl, which a courier Producer never
// calls: a sender needs sqs:SendMessage (it also authorises
// SendMessageBatch) or sns:Publish (also PublishBatch), and for a KMS key
// kms:GenerateDataKey and kms:Decrypt.

// GrantSend lets grantee send messages to q.
func (q QueueWithDLQ) GrantSend(grantee awsiam.IGrantable) {
	grant(grantee, []string{"sqs:SendMessage"}, *q.Queue.QueueArn())
	grantKey(grantee, q.EncryptionKey)
}

// grantPublish lets grantee publish to topic, encrypted with key (nil: the
// AWS-managed key, whose policy already allows it).
func grantPublish(grantee awsiam.IGrantable, topic awssns.ITopic, key awskms.IKey) {
	grant(grantee, []string{"sns:Publish"}, *topic.TopicArn())
	grantKey(grantee, key)
}

func grantKey(grantee awsiam.IGrantable, key awskms.IKey) {
	if key != nil {
		grant(grantee, []string{"kms:GenerateDataKey", "kms:Decrypt"}, *key.KeyArn())
	}
}

func grant(grantee awsiam.IGrantable, actions []string, resources ...string) {
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      jsii.Strings(actions...),
		ResourceArns: jsii.Strings(resources...),
	})
}
