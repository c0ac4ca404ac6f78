package filter

import (
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AttrsFromSQS converts the attributes of a received SQS message (or of a
// SendMessage input) for MatchAttributes. Binary attributes keep their type
// and no value: SNS does not filter on them.
func AttrsFromSQS(attrs map[string]sqstypes.MessageAttributeValue) map[string]Attr {
	out := make(map[string]Attr, len(attrs))
	for k, a := range attrs {
		out[k] = attr(a.DataType, a.StringValue)
	}
	return out
}

// AttrsFromSNS converts the attributes of an SNS Publish (or PublishBatch
// entry) for MatchAttributes, as AttrsFromSQS does.
func AttrsFromSNS(attrs map[string]snstypes.MessageAttributeValue) map[string]Attr {
	out := make(map[string]Attr, len(attrs))
	for k, a := range attrs {
		out[k] = attr(a.DataType, a.StringValue)
	}
	return out
}

func attr(dataType, value *string) Attr {
	var a Attr
	if dataType != nil {
		a.Type = *dataType
	}
	if value != nil {
		a.Value = *value
	}
	return a
}
