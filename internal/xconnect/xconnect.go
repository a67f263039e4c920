package xconnect

import (
	"os"
	"strings"
)

// setting is what the package adds to GODEBUG; net/http looks for it
// with strings.Contains, as Enabled does.
const setting = "http2xconnect=1"

var (
	// orig and origSet are GODEBUG as the process started: Restore puts
	// it back.
	orig    string
	origSet bool
	// pending says that init changed GODEBUG and Restore has not yet put
	// it back.
	pending bool
	// enabled says whether GODEBUG held the setting when net/http read it.
	enabled bool
)

func init() {
	orig, origSet = os.LookupEnv("GODEBUG")
	if strings.Contains(orig, "http2xconnect=") {
		enabled = strings.Contains(orig, setting)
		return
	}
	v := setting
	if orig != "" {
		v = orig + "," + setting
	}
	// Setenv fails only for a value with a NUL byte, which an inherited
	// value cannot hold.
	_ = os.Setenv("GODEBUG", v)
	pending, enabled = true, true
}

// Restore puts GODEBUG back as the process found it (unset, empty or its
// value), once net/http has read it: call it from the init of a package
// that imports net/http. Calling it again does nothing.
func Restore() {
	if !pending {
		return
	}
	pending = false
	if origSet {
		_ = os.Setenv("GODEBUG", orig) // cannot fail: it came from the environment
	} else {
		_ = os.Unsetenv("GODEBUG") // cannot fail on Unix
	}
}

// Enabled reports whether net/http's HTTP/2 server offers RFC 8441 in
// this process: whether GODEBUG held http2xconnect=1 when net/http read
// it, by this package's doing or the user's.
func Enabled() bool { return enabled }
