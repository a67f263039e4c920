package tcpproxy

import (
	"fmt"
	"net"

	proxyproto "github.com/pires/go-proxyproto"
)

// writeProxyHeader writes the PROXY protocol header of version ("v1",
// "v2"; "" writes nothing) for client's connection to up: the client's
// address as the source, the listener's as the destination.
func writeProxyHeader(up net.Conn, version string, client net.Conn) error {
	var v byte
	switch version {
	case "":
		return nil
	case "v1":
		v = 1
	case "v2":
		v = 2
	default:
		return fmt.Errorf("proxy protocol %q: not v1 or v2", version)
	}
	h := proxyproto.HeaderProxyFromAddrs(v, client.RemoteAddr(), client.LocalAddr())
	if _, err := h.WriteTo(up); err != nil {
		return fmt.Errorf("write proxy protocol %s header: %w", version, err)
	}
	return nil
}
