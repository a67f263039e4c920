package fleet

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// LogPath is the file the output of instance id of release goes to:
// <data_dir>/logs/<release>/<id>.log. It and logDir are the one place
// that names it.
func LogPath(cfg *config.Config, release, id string) string {
	return filepath.Join(logDir(cfg, release), id+logExt)
}

// logExt ends the name of every instance's log file.
const logExt = ".log"

// logDir holds the log files of release's instances.
func logDir(cfg *config.Config, release string) string { return filepath.Join(cfg.LogsDir(), release) }

// LogFiles returns the log files of release's instances, running or not,
// or of its instance id only when id is set, sorted; the error says there
// are none and why.
func (f *Fleet) LogFiles(release, id string) ([]string, error) {
	dir := logDir(f.cfg, release)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("no logs for release %s: %w", release, err)
	}
	var files []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, logExt) {
			continue
		}
		if id != "" && strings.TrimSuffix(name, logExt) != id {
			continue
		}
		files = append(files, filepath.Join(dir, name))
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no log files for release %s", release)
	}
	return files, nil
}

// logTrimEvery is how often the logs' total cap (app.logs_max_total) is
// enforced besides after each prune.
const logTrimEvery = 30 * time.Second

// trimLogsEvery enforces the logs' total cap every interval until the
// fleet is closed.
func (f *Fleet) trimLogsEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
			f.TrimLogs()
		}
	}
}

// TrimLogs holds <data_dir>/logs to app.logs_max_total, sparing the files
// the fleet's instances write to; it logs what it removed, and says once
// (until it is under again) when those files alone pass the cap.
func (f *Fleet) TrimLogs() {
	cfg := f.cfg
	open := map[string]bool{}
	for _, m := range f.instancesOf("", true) {
		open[LogPath(cfg, m.release, m.id)] = true
	}
	t, err := f.rel.TrimLogs(cfg.App.LogsMaxTotal, open)
	if err != nil {
		f.log.Warn("hold the logs to app.logs_max_total", "err", err)
		return
	}
	if len(t.Removed) > 0 {
		f.log.Info("removed the oldest log files to hold app.logs_max_total", "files", len(t.Removed),
			"bytes", t.RemovedBytes, "total", t.Total, "max", cfg.App.LogsMaxTotal)
	}
	over := t.Total > cfg.App.LogsMaxTotal
	if over && !f.logsOver.Swap(true) {
		f.log.Warn("the logs of the running instances alone pass app.logs_max_total; they are kept (each is capped by app.log_max_size): raise logs_max_total or lower log_max_size",
			"total", t.Total, "max", cfg.App.LogsMaxTotal, "config", cfg.Path)
	} else if !over {
		f.logsOver.Store(false)
	}
}

// TailFile returns up to n last lines of a file.
func TailFile(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return nil
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
