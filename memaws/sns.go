package memaws

import (
	"net/http"
	"net/url"
)

// snsState is every topic and subscription of a Server. (stub: replaced by the SNS helper)
type snsState struct{}

func (st *snsState) init() {}

// serveSNS answers one SNS query-protocol request.
func (s *Server) serveSNS(r *request, op string, form url.Values) *http.Response {
	return writeError("sns", op, &APIError{Status: 400, Code: "InvalidAction", Message: op + " is not implemented"})
}
