package memaws

import "net/http"

// s3State is every bucket of a Server. (stub: replaced by the S3 helper)
type s3State struct{}

func (st *s3State) init() {}

// s3Operation names the S3 operation of a REST request and its "bucket/key".
func s3Operation(r *http.Request) (op, resource string) { return r.Method, r.URL.Path }

// serveS3 answers one S3 REST request.
func (s *Server) serveS3(r *request, op string) *http.Response {
	return writeError("s3", op, &APIError{Status: 501, Code: "NotImplemented", Message: op + " is not implemented"})
}
