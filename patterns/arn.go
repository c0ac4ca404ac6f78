package patterns

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidARN: a string that is not the ARN of the kind of resource
// expected (an SQS queue, an SNS topic).
var ErrInvalidARN = errors.New("courier: invalid ARN")

// ARN is a parsed Amazon Resource Name of a queue or a topic:
// arn:PARTITION:SERVICE:REGION:ACCOUNT:NAME. SQS and SNS names hold no
// colon, so the name is the whole sixth field.
type ARN struct {
	Partition, Service, Region, Account, Name string
}

// ParseARN checks that s is the ARN of a resource of service ("sqs",
// "sns") and splits it. The error wraps ErrInvalidARN and names what was
// expected.
func ParseARN(s, service string) (ARN, error) {
	p := strings.Split(s, ":")
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] != service || p[4] == "" || p[5] == "" {
		return ARN{}, fmt.Errorf("%w: %q is not an %s ARN (arn:aws:%s:REGION:ACCOUNT:NAME)", ErrInvalidARN, s, strings.ToUpper(service), service)
	}
	return ARN{Partition: p[1], Service: p[2], Region: p[3], Account: p[4], Name: p[5]}, nil
}

// String is the ARN again.
func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Name
}
