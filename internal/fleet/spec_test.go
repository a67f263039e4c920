package fleet

import (
	"testing"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/proxy"
)

// TestGRPCAppConfig checks what a gRPC app's config gives its instances:
// h2c to the proxy's backends, the gRPC health protocol to their checks.
func TestGRPCAppConfig(t *testing.T) {
	for up, want := range map[string]proxy.Protocol{config.UpstreamHTTP1: proxy.HTTP1, config.UpstreamH2C: proxy.H2C} {
		if got := upstreamProtocol(config.App{UpstreamProtocol: up}); got != want {
			t.Errorf("upstream_protocol %q: got %v, want %v", up, got, want)
		}
	}
	hc := healthConfig(config.Health{Path: "/", GRPC: true, GRPCService: "shop.Cart"})
	if !hc.GRPC || hc.GRPCService != "shop.Cart" {
		t.Errorf("health config %+v: want GRPC and its service", hc)
	}
}
