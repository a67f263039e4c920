package migrate

import (
	"testing"

	"github.com/cutover/cutover/internal/pgtest"
)

func TestMain(m *testing.M) {
	if runChildIfAsked() {
		return
	}
	pgtest.Main(m)
}
