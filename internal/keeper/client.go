package keeper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// ErrNoKeeper is returned by Upgrade when no keeper listens for the data
// directory.
var ErrNoKeeper = errors.New("no keeper runs for this data directory")

// Upgrade asks the keeper of dataDir to replace its daemon (see the
// package doc) and returns what it did; progress receives each step.
func Upgrade(ctx context.Context, dataDir string, progress func(string)) (Result, error) {
	path := filepath.Join(dataDir, "keeper.sock")
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Result{}, fmt.Errorf("%w (%s: %v)", ErrNoKeeper, path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := fmt.Fprintln(c, "upgrade"); err != nil {
		return Result{}, fmt.Errorf("ask the keeper (%s): %w", path, err)
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		word, rest, _ := strings.Cut(sc.Text(), " ")
		switch word {
		case "log":
			if progress != nil {
				progress(rest)
			}
		case "ok":
			var res Result
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return res, fmt.Errorf("the keeper's answer %q: %w", rest, err)
			}
			return res, nil
		case "error":
			return Result{}, errors.New(rest)
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return Result{}, fmt.Errorf("the keeper (%s) closed the connection without an answer: %v", path, sc.Err())
}
