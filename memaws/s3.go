package memaws

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// S3: the calls courier's claim check and test harness make, and the
// multipart upload feature/s3/manager's Uploader uses for large bodies:
// CreateBucket, DeleteBucket, HeadBucket, ListBuckets, PutObject,
// GetObject (with Range), HeadObject, DeleteObject, DeleteObjects,
// ListObjectsV2, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload. No versioning, ACLs,
// encryption or lifecycle. Objects live in memory, bounded by
// Options.MaxObjectBytes.

// s3State is every bucket of a Server.
type s3State struct {
	buckets map[string]*bucket
	bytes   int64 // stored objects and pending parts, against Options.MaxObjectBytes
}

func (st *s3State) init() { st.buckets = map[string]*bucket{} }

type bucket struct {
	name    string
	created time.Time
	objects map[string]*object
	uploads map[string]*upload
}

// object is one stored S3 object.
type object struct {
	data     []byte
	etag     string // quoted, as S3 sends it
	modified time.Time
	headers  http.Header // Content-Type, Cache-Control, ... and x-amz-meta-*
	// The object's checksum, when the upload carried one: algorithm
	// ("CRC32", ...), base64 value ("<b64>-<parts>" for a composite
	// multipart checksum) and type (FULL_OBJECT or COMPOSITE).
	checksumAlg, checksum, checksumType string
	parts                               int     // of a multipart upload, 0 otherwise
	partSizes                           []int64 // of a multipart upload
}

// storedHeaders are the request headers of a PutObject (or
// CreateMultipartUpload) that S3 keeps with the object and returns on
// GetObject and HeadObject.
var storedHeaders = []string{"Content-Type", "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// s3Address reads bucket and key from a request, path-style
// (/bucket/key) or virtual-hosted (bucket.host/key).
func s3Address(r *http.Request) (bucketName, key string) {
	path := r.URL.Path
	host := r.URL.Host
	if host == "" {
		host = r.Host
	}
	host, _, _ = strings.Cut(host, ":")
	base := strings.TrimPrefix(Endpoint, "http://")
	if b, ok := strings.CutSuffix(host, "."+base); ok {
		return b, strings.TrimPrefix(path, "/")
	}
	bucketName, key, _ = strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return bucketName, key
}

// s3Operation names the S3 operation of a REST request and its "bucket/key".
func s3Operation(r *http.Request) (op, resource string) {
	b, key := s3Address(r)
	q := r.URL.Query()
	resource = b
	if key != "" {
		resource = b + "/" + key
	}
	if b == "" {
		if r.Method == http.MethodGet {
			return "ListBuckets", ""
		}
		return r.Method, ""
	}
	if key == "" {
		switch r.Method {
		case http.MethodPut:
			return "CreateBucket", resource
		case http.MethodDelete:
			return "DeleteBucket", resource
		case http.MethodHead:
			return "HeadBucket", resource
		case http.MethodPost:
			if q.Has("delete") {
				return "DeleteObjects", resource
			}
		case http.MethodGet:
			switch {
			case q.Get("list-type") == "2":
				return "ListObjectsV2", resource
			case q.Has("location"):
				return "GetBucketLocation", resource
			case q.Has("uploads"):
				return "ListMultipartUploads", resource
			case len(q) == 0 || q.Has("prefix") || q.Has("marker") || q.Has("delimiter") || q.Has("max-keys"):
				return "ListObjects", resource
			}
		}
		return r.Method + "Bucket", resource
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && q.Has("uploadId"):
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return "UploadPartCopy", resource
			}
			return "UploadPart", resource
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject", resource
		case len(q) == 0 || q.Get("x-id") == "PutObject":
			return "PutObject", resource
		}
	case http.MethodGet:
		switch {
		case q.Has("uploadId"):
			return "ListParts", resource
		case len(q) == 0 || q.Get("x-id") == "GetObject" || q.Has("partNumber") || q.Has("versionId"):
			return "GetObject", resource
		}
	case http.MethodHead:
		return "HeadObject", resource
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "AbortMultipartUpload", resource
		}
		return "DeleteObject", resource
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload", resource
		case q.Has("uploadId"):
			return "CompleteMultipartUpload", resource
		}
	}
	return r.Method + "Object", resource
}

// serveS3 answers one S3 REST request.
func (s *Server) serveS3(r *request, op string) *http.Response {
	b, key := s3Address(r.http)
	var resp *http.Response
	var e *APIError
	s.mu.Lock()
	switch op {
	case "ListBuckets":
		resp = s.s3ListBuckets()
	case "CreateBucket":
		resp, e = s.s3CreateBucket(r, b)
	case "DeleteBucket":
		e = s.s3DeleteBucket(b)
		if e == nil {
			resp = response(http.StatusNoContent, "", nil)
		}
	case "HeadBucket":
		if _, e = s.s3Bucket(b); e == nil {
			resp = response(http.StatusOK, "", nil)
			resp.Header.Set("X-Amz-Bucket-Region", s.opts.Region)
		}
	case "GetBucketLocation":
		if _, e = s.s3Bucket(b); e == nil {
			loc := s.opts.Region
			if loc == "us-east-1" {
				loc = ""
			}
			resp = xmlResponse(http.StatusOK, struct {
				XMLName xml.Name `xml:"LocationConstraint"`
				Region  string   `xml:",chardata"`
			}{Region: loc})
		}
	case "ListObjectsV2":
		resp, e = s.s3ListObjectsV2(r, b)
	case "DeleteObjects":
		resp, e = s.s3DeleteObjects(r, b)
	case "PutObject":
		resp, e = s.s3PutObject(r, b, key)
	case "GetObject", "HeadObject":
		resp, e = s.s3GetObject(r, b, key, op == "HeadObject")
	case "DeleteObject":
		if _, e = s.s3Bucket(b); e == nil {
			s.s3RemoveLocked(s.s3.buckets[b], key)
			resp = response(http.StatusNoContent, "", nil)
		}
	case "CreateMultipartUpload":
		resp, e = s.s3CreateMultipartUpload(r, b, key)
	case "UploadPart":
		resp, e = s.s3UploadPart(r, b, key)
	case "CompleteMultipartUpload":
		resp, e = s.s3CompleteMultipartUpload(r, b, key)
	case "AbortMultipartUpload":
		e = s.s3AbortMultipartUpload(r, b, key)
		if e == nil {
			resp = response(http.StatusNoContent, "", nil)
		}
	default:
		e = &APIError{Status: http.StatusNotImplemented, Code: "NotImplemented", Message: "memaws does not implement " + op}
	}
	s.mu.Unlock()
	if e != nil {
		return writeError("s3", op, e)
	}
	return resp
}

// s3Bucket returns the named bucket or NoSuchBucket. s.mu held.
func (s *Server) s3Bucket(name string) (*bucket, *APIError) {
	b, ok := s.s3.buckets[name]
	if !ok {
		return nil, &APIError{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "The specified bucket does not exist"}
	}
	return b, nil
}

// validBucketName follows the general purpose bucket naming rules: 3 to 63
// lowercase letters, digits, dots and hyphens, beginning and ending with a
// letter or digit, no "..", not an IP address.
func validBucketName(n string) bool {
	if len(n) < 3 || len(n) > 63 || strings.Contains(n, "..") {
		return false
	}
	for i, c := range n {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(n)-1 || c != '.' && c != '-') {
			return false
		}
	}
	dotsDigits := strings.Trim(n, "0123456789.") == "" && strings.Count(n, ".") == 3
	return !dotsDigits
}

func (s *Server) s3CreateBucket(r *request, name string) (*http.Response, *APIError) {
	if !validBucketName(name) {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidBucketName", Message: "The specified bucket is not valid."}
	}
	if len(bytes.TrimSpace(r.body)) > 0 {
		var cfg struct {
			LocationConstraint string
		}
		if err := xml.Unmarshal(r.body, &cfg); err != nil {
			return nil, malformedXML()
		}
		if cfg.LocationConstraint != "" && (cfg.LocationConstraint != s.opts.Region || s.opts.Region == "us-east-1") {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "IllegalLocationConstraintException",
				Message: "The " + cfg.LocationConstraint + " location constraint is incompatible for the region specific endpoint this request was sent to."}
		}
	}
	if _, ok := s.s3.buckets[name]; ok {
		// "You get this error in all AWS Regions except US East (N.
		// Virginia) Region, us-east-1. In us-east-1, you get 200 OK."
		if s.opts.Region != "us-east-1" {
			return nil, &APIError{Status: http.StatusConflict, Code: "BucketAlreadyOwnedByYou",
				Message: "Your previous request to create the named bucket succeeded and you already own it."}
		}
	} else {
		s.s3.buckets[name] = &bucket{name: name, created: s.nowLocked(), objects: map[string]*object{}, uploads: map[string]*upload{}}
	}
	resp := response(http.StatusOK, "", nil)
	resp.Header.Set("Location", "/"+name)
	return resp, nil
}

func (s *Server) s3DeleteBucket(name string) *APIError {
	b, e := s.s3Bucket(name)
	if e != nil {
		return e
	}
	if len(b.objects) > 0 {
		return &APIError{Status: http.StatusConflict, Code: "BucketNotEmpty", Message: "The bucket you tried to delete is not empty"}
	}
	for id := range b.uploads {
		s.s3AbortLocked(b, id)
	}
	delete(s.s3.buckets, name)
	return nil
}

func (s *Server) s3ListBuckets() *http.Response {
	type bk struct {
		Name         string
		CreationDate string
	}
	var out struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		Owner   struct{ ID, DisplayName string }
		Buckets []bk `xml:"Buckets>Bucket"`
	}
	out.Owner.ID, out.Owner.DisplayName = s.opts.Account, "memaws"
	for _, b := range s.s3.buckets {
		out.Buckets = append(out.Buckets, bk{b.name, s3Time(b.created)})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].Name < out.Buckets[j].Name })
	return xmlResponse(http.StatusOK, out)
}

// s3Time is a timestamp as S3's XML writes it.
func s3Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// xmlResponse marshals v as an S3 XML body.
func xmlResponse(status int, v any) *http.Response {
	b, err := xml.Marshal(v)
	if err != nil {
		return writeError("s3", "", &APIError{Status: 500, Code: "InternalError", Message: err.Error()})
	}
	return response(status, "application/xml", append([]byte(xml.Header), b...))
}

func malformedXML() *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "MalformedXML",
		Message: "The XML you provided was not well-formed or did not validate against our published schema"}
}

// s3ListObjectsV2 lists a bucket's keys in UTF-8 binary order, with
// prefix, delimiter (common prefixes), max-keys, start-after and
// continuation tokens (the last key returned).
func (s *Server) s3ListObjectsV2(r *request, name string) (*http.Response, *APIError) {
	b, e := s.s3Bucket(name)
	if e != nil {
		return nil, e
	}
	q := r.http.URL.Query()
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, ok := s3Atoi(v)
		if !ok {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Provided max-keys not an integer or within integer range"}
		}
		maxKeys = min(n, 1000)
	}
	after := q.Get("start-after")
	token := q.Get("continuation-token")
	if token != "" {
		t, err := url.QueryUnescape(token)
		if err != nil {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "The continuation token provided is incorrect"}
		}
		after = max(after, t)
	}
	encode := func(s string) string { return s }
	if q.Get("encoding-type") == "url" {
		encode = func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/") }
	}
	type content struct {
		Key          string
		LastModified string
		ETag         string
		Size         int
		StorageClass string
	}
	type commonPrefix struct{ Prefix string }
	var out struct {
		XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
		Name                  string
		Prefix                string
		Delimiter             string `xml:",omitempty"`
		MaxKeys               int
		KeyCount              int
		IsTruncated           bool
		EncodingType          string         `xml:",omitempty"`
		ContinuationToken     string         `xml:",omitempty"`
		NextContinuationToken string         `xml:",omitempty"`
		StartAfter            string         `xml:",omitempty"`
		Contents              []content      `xml:"Contents"`
		CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
	}
	out.Name, out.Prefix, out.Delimiter, out.MaxKeys = name, encode(prefix), encode(delim), maxKeys
	out.ContinuationToken, out.StartAfter = token, encode(q.Get("start-after"))
	if q.Get("encoding-type") == "url" {
		out.EncodingType = "url"
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	last := ""
	for _, k := range keys {
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if cp <= last { // already listed
					continue
				}
				if out.KeyCount == maxKeys {
					out.IsTruncated = true
					break
				}
				out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{encode(cp)})
				out.KeyCount++
				// Skip the rest of this prefix: the next key to list
				// sorts after every key that begins with cp.
				last = cp + "\U0010FFFF"
				continue
			}
		}
		if out.KeyCount == maxKeys {
			out.IsTruncated = true
			break
		}
		o := b.objects[k]
		out.Contents = append(out.Contents, content{encode(k), s3Time(o.modified), o.etag, len(o.data), "STANDARD"})
		out.KeyCount++
		last = k
	}
	if out.IsTruncated {
		out.NextContinuationToken = url.QueryEscape(last)
	}
	return xmlResponse(http.StatusOK, out), nil
}

// s3DeleteObjects deletes up to 1000 keys; a key that does not exist is
// reported deleted, as S3 does. An injected entry failure reports that
// key in Error and leaves it.
func (s *Server) s3DeleteObjects(r *request, name string) (*http.Response, *APIError) {
	b, e := s.s3Bucket(name)
	if e != nil {
		return nil, e
	}
	var in struct {
		Quiet   bool
		Objects []struct {
			Key       string
			VersionId string
		} `xml:"Object"`
	}
	if err := xml.Unmarshal(r.body, &in); err != nil || len(in.Objects) == 0 || len(in.Objects) > 1000 {
		return nil, malformedXML()
	}
	type deleted struct{ Key string }
	type failed struct{ Key, Code, Message string }
	var out struct {
		XMLName xml.Name  `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
		Deleted []deleted `xml:"Deleted"`
		Errors  []failed  `xml:"Error"`
	}
	for i, o := range in.Objects {
		if ee, ok := r.entryError(i); ok {
			out.Errors = append(out.Errors, failed{o.Key, ee.Code, ee.Message})
			continue
		}
		s.s3RemoveLocked(b, o.Key)
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deleted{o.Key})
		}
	}
	return xmlResponse(http.StatusOK, out), nil
}

// s3RemoveLocked deletes an object, if there is one. s.mu held.
func (s *Server) s3RemoveLocked(b *bucket, key string) {
	if o, ok := b.objects[key]; ok {
		s.s3.bytes -= int64(len(o.data))
		delete(b.objects, key)
	}
}

// s3ReserveLocked accounts n more stored bytes, or refuses them beyond
// Options.MaxObjectBytes. s.mu held.
func (s *Server) s3ReserveLocked(n int64) *APIError {
	if s.opts.MaxObjectBytes > 0 && s.s3.bytes+n > s.opts.MaxObjectBytes {
		return &APIError{Status: http.StatusBadRequest, Code: "StorageQuotaExceeded",
			Message: "memaws: the objects stored would exceed Options.MaxObjectBytes"}
	}
	s.s3.bytes += n
	return nil
}
