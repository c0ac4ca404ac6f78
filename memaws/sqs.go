package memaws

import "net/http"

// sqsState is every queue of a Server. (stub: the SQS helper replaces this file)
type sqsState struct{}

func (st *sqsState) init() {}

// serveSQS answers one SQS JSON 1.0 request.
func (s *Server) serveSQS(r *request, op string) *http.Response {
	return writeError("sqs", op, &APIError{Status: 400, Code: "UnsupportedOperation", Message: op + " is not implemented"})
}

// deliverLocked puts a message SNS delivers into the queue with this ARN. s.mu held.
func (s *Server) deliverLocked(queueARN string, d delivery) *APIError {
	return &APIError{Status: 400, Code: "QueueDoesNotExist", Message: queueARN}
}
