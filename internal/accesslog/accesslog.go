// Package accesslog writes the proxy's access log: one line per request,
// in JSON or in the combined format of nginx and Apache, to a file or to
// standard output.
//
// The request's goroutine never writes: Writer.Log hands the entry to a
// bounded queue and returns, and one goroutine, the only owner of the
// file, formats the entries into a 64 KiB buffer, written to the file
// when full or FlushInterval (100 ms) after its first line: under load one
// write(2) carries hundreds of lines, and a line reaches the file within
// 100 ms. When the queue is full — the disk
// is slower than the requests — the entry is dropped and counted
// (Writer.Count, the metric cutover_access_log_dropped_lines_total):
// losing a log line costs less than holding up every request behind a
// disk. The queue holds QueueLength entries.
//
// Rotation is logrotate's: it renames the file and signals the daemon
// (SIGUSR1), which calls Reopen; the writer flushes what it has into the
// old file and opens the path again, so no line is lost or split. No
// copytruncate: a truncated file under an open O_APPEND descriptor loses
// what is written between the copy and the truncation.
//
// The logged URI is the request's target as the client sent it, query
// included, as nginx's $request_uri: a query often tells what the request
// did. One parameter is taken out: cutover's own preview token
// (cutover_preview), a secret, whose value is logged as "REDACTED" in
// each of its occurrences in the query.
package accesslog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// Format is the access log's format.
type Format int

const (
	// JSON writes one JSON object per line (json.go).
	JSON Format = iota
	// Combined writes nginx's combined format.
	Combined
)

// ParseFormat reads a format's name: "json" or "combined".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json", "":
		return JSON, nil
	case "combined":
		return Combined, nil
	}
	return 0, fmt.Errorf("access log format %q: want \"json\" or \"combined\"", s)
}

// QueueLength is how many entries wait for the writer before new ones are
// dropped: a few seconds of a busy app's requests behind a stalled disk.
const QueueLength = 8192

// Writer is an access log. Its methods are safe for concurrent use.
type Writer struct {
	format Format
	path   string // "" = out is standard output, never reopened

	queue   chan traffic.Access
	dropped atomic.Uint64
	reopen  chan chan error
	done    chan struct{} // closed when the writing goroutine ends
	stop    context.CancelFunc
	once    sync.Once

	// Owned by the writing goroutine once Open returns.
	file *os.File
	bw   *bufio.Writer
	// line is the entry being formatted: each is written to bw whole, so
	// that a flush never splits a line (two daemons append to the file
	// during an upgrade).
	line []byte
}

// Open starts an access log writing to path ("stdout": standard output)
// in format. The file is created (mode 0640) when missing and appended
// to.
func Open(path string, format Format) (*Writer, error) {
	w := &Writer{format: format, queue: make(chan traffic.Access, QueueLength), reopen: make(chan chan error), done: make(chan struct{})}
	if path == "stdout" {
		w.file = os.Stdout
	} else {
		w.path = path
		f, err := openFile(path)
		if err != nil {
			return nil, err
		}
		w.file = f
	}
	w.bw = bufio.NewWriterSize(w.file, 64<<10)
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go w.run(ctx)
	return w, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open the access log (log.access): %w", err)
	}
	return f, nil
}

// Log queues one entry, or drops and counts it when the queue is full.
// It never blocks.
func (w *Writer) Log(a traffic.Access) {
	select {
	case w.queue <- a:
	default:
		w.dropped.Add(1)
	}
}

// Count returns how many entries were dropped because the queue was full.
func (w *Writer) Count() uint64 { return w.dropped.Load() }

// Reopen flushes what is queued into the file and opens its path again
// (after logrotate renamed it). It does nothing for standard output.
func (w *Writer) Reopen() error {
	if w.path == "" {
		return nil
	}
	ch := make(chan error, 1)
	select {
	case w.reopen <- ch:
		return <-ch
	case <-w.done:
		return errors.New("access log closed")
	}
}

// Close writes what is queued, flushes and closes the file.
func (w *Writer) Close() error {
	w.once.Do(w.stop)
	<-w.done
	return nil
}

// run is the writing goroutine: the only one that touches the file.
func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	defer w.closeFile()
	// The buffer is written out FlushInterval after its first line, or
	// when full: one write(2) per request would cost more than the rest
	// of the line's work.
	timer := time.NewTimer(FlushInterval)
	timer.Stop()
	armed := false
	for {
		select {
		case a := <-w.queue:
			w.write(a)
			if !armed && w.bw.Buffered() > 0 {
				timer.Reset(FlushInterval)
				armed = true
			}
		case <-timer.C:
			armed = false
			w.flush()
		case ch := <-w.reopen:
			w.drain()
			ch <- w.reopenFile()
		case <-ctx.Done():
			w.drain()
			return
		}
	}
}

// FlushInterval is how long a line may wait in the buffer before it is
// written to the file (nginx's access_log flush=); a full buffer (64 KiB)
// is written at once.
const FlushInterval = 100 * time.Millisecond

// drain writes every queued entry and flushes.
func (w *Writer) drain() {
	for {
		select {
		case a := <-w.queue:
			w.write(a)
		default:
			w.flush()
			return
		}
	}
}

func (w *Writer) flush() {
	if err := w.bw.Flush(); err != nil {
		// A full disk: the lines buffered are lost, and the next ones are
		// tried again. Said on stderr, where the daemon's log goes.
		fmt.Fprintf(os.Stderr, "cutover: write the access log %s: %v\n", w.name(), err)
		w.bw.Reset(w.file)
	}
}

func (w *Writer) name() string {
	if w.path == "" {
		return "to stdout"
	}
	return w.path
}

func (w *Writer) reopenFile() error {
	f, err := openFile(w.path)
	if err != nil {
		// Keep writing to the old file rather than nowhere.
		return err
	}
	old := w.file
	w.file = f
	w.bw.Reset(f)
	if err := old.Close(); err != nil {
		return fmt.Errorf("close the rotated access log: %w", err)
	}
	return nil
}

func (w *Writer) closeFile() {
	if w.path != "" {
		// Everything was flushed; closing a file only written to with
		// O_APPEND reports nothing more to act on.
		_ = w.file.Close()
	}
}

// write formats one entry into the buffer.
func (w *Writer) write(a traffic.Access) {
	uri := redact(a.URI)
	if w.format == Combined {
		w.line = appendCombined(w.line[:0], &a, uri)
	} else {
		w.line = appendJSON(w.line[:0], &a, uri)
	}
	if len(w.line) > w.bw.Available() && w.bw.Buffered() > 0 {
		w.flush()
	}
	// Errors surface at flush.
	_, _ = w.bw.Write(w.line)
}

// previewParam is the query parameter carrying a preview token
// (traffic.PreviewParam), as it appears in a target.
const previewParam = traffic.PreviewParam + "="

// redact replaces the value of every preview token parameter in uri's
// query (the proxy strips them only while a preview is up, and takes the
// first); the rest of uri is kept byte for byte.
func redact(uri string) string {
	if !strings.Contains(uri, previewParam) {
		return uri
	}
	q := strings.IndexByte(uri, '?')
	if q < 0 {
		return uri
	}
	query, frag := uri[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	var b strings.Builder
	b.Grow(len(uri))
	b.WriteString(uri[:q+1])
	for i, part := range strings.Split(query, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		if strings.HasPrefix(part, previewParam) {
			b.WriteString(previewParam + "REDACTED")
			continue
		}
		b.WriteString(part)
	}
	b.WriteString(frag)
	return b.String()
}

// clientIP is the address of addr (host:port) without its port, as
// nginx's $remote_addr.
func clientIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// appendCombined appends the entry in nginx's combined format:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// with the time in UTC and the quoted fields escaped as nginx does
// (" and \ and bytes outside printable ASCII as \xHH).
func appendCombined(b []byte, a *traffic.Access, uri string) []byte {
	b = append(b, clientIP(a.ClientAddr)...)
	b = append(b, " - - ["...)
	b = a.Time.UTC().AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendEscaped(b, a.Method)
	b = append(b, ' ')
	b = appendEscaped(b, uri)
	b = append(b, ' ')
	b = appendEscaped(b, a.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(a.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, a.Bytes, 10)
	b = append(b, " \""...)
	b = appendEscaped(b, orDash(a.Referer))
	b = append(b, "\" \""...)
	b = appendEscaped(b, orDash(a.UserAgent))
	return append(b, "\"\n"...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendEscaped appends s as nginx writes a variable in a log line.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

var _ io.Closer = (*Writer)(nil)
