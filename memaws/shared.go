package memaws

// attrValue is a message attribute as SQS's JSON protocol carries it
// (BinaryValue base64 on the wire, as encoding/json writes []byte).
type attrValue struct {
	DataType    string  `json:"DataType"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
}

// delivery is a message SNS hands to a subscribed queue.
type delivery struct {
	Body       string
	Attributes map[string]attrValue // raw delivery only; nil otherwise
	GroupID    string               // FIFO
	DedupID    string               // FIFO
}
