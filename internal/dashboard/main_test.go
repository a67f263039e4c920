package dashboard

import (
	"os"
	"testing"

	"github.com/cutover/cutover/internal/demoapp"
)

// appEnv, set in the tests' [app.env], makes the test binary run the demo
// app instead of the tests: the app the test engine deploys.
const appEnv = "CUTOVER_DASHBOARD_TEST_APP"

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		os.Exit(demoapp.Main())
	}
	os.Exit(m.Run())
}
