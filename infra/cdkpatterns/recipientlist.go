package cdkpatterns

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// RecipientListTargetsProps names the destinations of a recipient list.
type RecipientListTargetsProps struct {
	// Queues: a queue (+DLQ) per name, each shaped by Queue.
	Queues []string
	Queue  QueueWithDLQProps
	// Topics: a topic per name (their subscribers are the caller's).
	Topics []string
	// TopicKey encrypts the topics; nil: AWSManagedSNSKey.
	TopicKey awskms.IKey
}

// RecipientListTargets are the queues and topics a recipient-list router
// sends to, by name.
type RecipientListTargets struct {
	Queues   map[string]QueueWithDLQ
	Topics   map[string]awssns.Topic
	TopicKey awskms.IKey
}

// NewRecipientListTargets provisions the destinations of a recipient list:
// queues (+DLQs) and topics, secured as the other constructs secure them.
// GrantSend lets the router send to all of them.
func NewRecipientListTargets(scope constructs.Construct, id string, props *RecipientListTargetsProps) RecipientListTargets {
	p := RecipientListTargetsProps{}
	if props != nil {
		p = *props
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	r := RecipientListTargets{Queues: map[string]QueueWithDLQ{}, Topics: map[string]awssns.Topic{}, TopicKey: p.TopicKey}
	var problems []string
	seen := map[string]bool{}
	name := func(n string) bool {
		switch {
		case n == "":
			problems = append(problems, "a target has no name")
		case seen[n]:
			problems = append(problems, fmt.Sprintf("two targets named %q", n))
		default:
			seen[n] = true
			return true
		}
		return false
	}
	for _, n := range p.Queues {
		if name(n) {
			r.Queues[n] = NewQueueWithDLQ(c, n, &p.Queue)
		}
	}
	for _, n := range p.Topics {
		if name(n) {
			r.Topics[n] = newTopic(constructs.NewConstruct(c, jsii.String(n)), topicProps{key: p.TopicKey})
		}
	}
	if len(seen) == 0 {
		problems = append(problems, "no Queues and no Topics")
	}
	invalid(c, problems...)
	return r
}

// GrantSend lets grantee (the router) send to every queue and publish to
// every topic of the list: sqs:SendMessage and sns:Publish on their ARNs
// (and the KMS actions their keys need), nothing else.
func (r RecipientListTargets) GrantSend(grantee awsiam.IGrantable) {
	for _, n := range sortedKeys(r.Queues) {
		r.Queues[n].GrantSend(grantee)
	}
	for _, n := range sortedKeys(r.Topics) {
		grantPublish(grantee, r.Topics[n], r.TopicKey)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
