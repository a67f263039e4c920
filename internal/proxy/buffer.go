package proxy

// Request body buffering: the body is read from the client whole before
// the request goes to the app, so a slow client never holds an app
// connection (nor a worker of a Unicorn, gunicorn or PHP-FPM pool).

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
)

// errBodyTooLarge is a request body over Options.MaxRequestBody.
var errBodyTooLarge = errors.New("request body too large")

// bufferedBody is a request body read from the client before the request
// goes upstream: its first RequestBufferMemory bytes in memory, the rest
// in an unlinked temporary file. When the file could not be made or
// written, rest is the client's body still to be read, which then
// streams after what was buffered.
type bufferedBody struct {
	mem []byte
	// file holds the bytes after mem, fileSize of them; nil when none.
	file     *os.File
	fileSize int64
	// tail holds bytes read from the client that the file could not take.
	tail []byte
	rest io.Reader

	// Reading: off is the offset in mem, then in the file.
	off    int64
	closed bool
}

// size is the number of bytes buffered.
func (b *bufferedBody) size() int64 { return int64(len(b.mem)) + b.fileSize + int64(len(b.tail)) }

func (b *bufferedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.off < int64(len(b.mem)) {
		n := copy(p, b.mem[b.off:])
		b.off += int64(n)
		return n, nil
	}
	if fo := b.off - int64(len(b.mem)); fo < b.fileSize {
		if int64(len(p)) > b.fileSize-fo {
			p = p[:b.fileSize-fo]
		}
		n, err := b.file.ReadAt(p, fo)
		b.off += int64(n)
		if err == io.EOF && n > 0 { //nolint:errorlint // ReadAt returns it as is
			err = nil
		}
		if err == io.EOF { //nolint:errorlint // as above
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	if len(b.tail) > 0 {
		n := copy(p, b.tail)
		b.tail = b.tail[n:]
		return n, nil
	}
	if b.rest != nil {
		return b.rest.Read(p)
	}
	return 0, io.EOF
}

// Close releases the temporary file; the client's body, if some of it
// is still unread, is the server's to close. Safe to call twice.
func (b *bufferedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.file != nil {
		// The file is unlinked already; closing frees its space.
		return b.file.Close()
	}
	return nil
}

// buffering reports whether a request body of length cl (-1: unknown) is
// read whole before going upstream: one with a Content-Length of at most
// MaxBufferedBody. A chunked body streams: it is how a client streams an
// upload, possibly reading the answer meanwhile (full duplex), which
// buffering would break.
func (p *Proxy) buffering(cl int64) bool {
	return !p.opts.StreamRequestBodies && cl >= 0 && cl <= p.opts.MaxBufferedBody
}

// bufferBody reads the client's body cb, of length cl, into memory, up to
// RequestBufferMemory bytes, then into a temporary file under
// BodyTempDir, to its end. An error is the client's (cb.err): a body cut
// short, a stall.
func (p *Proxy) bufferBody(cb *clientBody, cl int64) (*bufferedBody, error) {
	b := new(bufferedBody)
	mem := make([]byte, 0, min(cl, p.opts.RequestBufferMemory))
	for {
		if len(mem) == cap(mem) {
			if int64(len(mem)) < cl {
				break
			}
			// The whole announced body is in: its end is still to be
			// read, which tells the server the body is done.
			var probe [1]byte
			n, err := cb.Read(probe[:])
			if n > 0 {
				return nil, errors.New("request body longer than its Content-Length")
			}
			if err == io.EOF { //nolint:errorlint // io.Reader's contract
				b.mem = mem
				return b, nil
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		n, err := cb.Read(mem[len(mem):cap(mem)])
		mem = mem[:len(mem)+n]
		if err == io.EOF { //nolint:errorlint // io.Reader's contract
			b.mem = mem
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
	b.mem = mem
	if err := p.spill(b, cb); err != nil {
		return nil, err
	}
	return b, nil
}

// spill reads the rest of the client's body cb into b's temporary file,
// to its end. A file that cannot be made or written (disk full) makes
// the rest stream (b.rest): the request still goes through, as it would
// without buffering.
func (p *Proxy) spill(b *bufferedBody, cb *clientBody) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := cb.Read(buf)
		if n > 0 && b.file == nil {
			// Made on the first byte past memory: a body of exactly
			// RequestBufferMemory bytes needs no file.
			f, err := p.createBodyFile()
			if err != nil {
				p.log.Warn("request body streams: cannot buffer it in a file", "dir", p.opts.BodyTempDir, "err", err)
				b.tail = append([]byte(nil), buf[:n]...)
				b.rest = cb
				return nil
			}
			b.file = f
		}
		if n > 0 {
			w, werr := b.file.WriteAt(buf[:n], b.fileSize)
			b.fileSize += int64(w)
			if werr != nil {
				p.log.Warn("request body streams: cannot buffer it in a file", "dir", p.opts.BodyTempDir, "err", werr)
				b.tail = append([]byte(nil), buf[w:n]...)
				b.rest = cb
				return nil
			}
		}
		if rerr == io.EOF { //nolint:errorlint // io.Reader's contract
			return nil
		}
		if rerr != nil {
			_ = b.Close()
			return rerr
		}
	}
}

// createBodyFile creates a temporary file for a request body under
// BodyTempDir (made if missing) and unlinks it at once: the open file
// keeps its data, and nothing is left on disk when it is closed or the
// process dies.
func (p *Proxy) createBodyFile() (*os.File, error) {
	dir := p.opts.BodyTempDir
	f, err := os.CreateTemp(dir, "body-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.CreateTemp(dir, "body-*")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// attach makes b the body of out, the upstream request; h is out's
// header map, the proxy's own. A body buffered whole goes without
// Expect: 100-continue, since it is here already: the app has nothing to
// accept or refuse before it.
func (b *bufferedBody) attach(out *http.Request, h http.Header) {
	out.Body = b
	if b.rest == nil {
		delete(h, "Expect")
	}
}
