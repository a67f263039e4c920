package traffic

import "time"

// Access is one request as the access log records it (see package
// accesslog). The proxy fills it only when access logging is on.
type Access struct {
	// Time is when the proxy began routing the request (its head read).
	Time time.Time
	// RequestID is the X-Request-ID sent to the app and back to the
	// client.
	RequestID string
	// App names the app; Release and Instance the release and instance
	// that answered, "" when none did (held until a 503, refused).
	App, Release, Instance string
	// Method, Host and URI are the request's; URI is its target as the
	// client sent it, query included (as nginx's $request_uri).
	Method, Host, URI string
	// Proto is the request's protocol, "HTTP/1.1".
	Proto string
	// Status is the status sent to the client; 499 when the client went
	// away before an answer (nginx's code for it).
	Status int
	// Bytes counts the response body bytes written to the client.
	Bytes int64
	// Duration is from Time to the last byte of the answer written (or
	// the exchange ending).
	Duration time.Duration
	// Upstream is from the request being sent to its backend (the last
	// attempt) to the response headers; 0 when no backend answered.
	Upstream time.Duration
	// Held is how long the request waited for a healthy backend, or in a
	// held switch; 0 when it did not wait.
	Held time.Duration
	// Retries counts the attempts sent again to another backend (or the
	// same one) after one failed.
	Retries int
	// ClientAddr is the peer's address (host:port); Referer and
	// UserAgent the request's fields, "" when absent.
	ClientAddr, Referer, UserAgent string
}
