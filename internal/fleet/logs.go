package fleet

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// LogPath is the file the output of instance id of release goes to:
// <data_dir>/logs/<release>/<id>.log. It is the one place that names it.
func LogPath(cfg *config.Config, release, id string) string {
	return filepath.Join(cfg.LogsDir(), release, id+".log")
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
