package deploy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutover/cutover/internal/envfile"
	"github.com/cutover/cutover/internal/release"
)

// bareDigestPrefix starts the unkeyed digests that cutover recorded before
// digests were keyed: sha256 of a value anyone could hash a guess to
// compare with.
const bareDigestPrefix = "sha256:"

// rekeyDigests replaces the bare sha256 digests of release metadata
// recorded by an older cutover — in state and in each release's metadata
// file — with keyed ones. The environment's digests are computed again
// from the recorded environment snapshot; the config digest, whose file
// is not kept, from the sha256 it was (fileDigest keys that very sha256).
// A release it cannot convert loses its digests rather than keep bare
// ones. Failures are logged: they must not keep the daemon from serving.
func (e *Engine) rekeyDigests(ctx context.Context) {
	rels, err := e.store.Releases(ctx)
	if err != nil {
		e.log.Error("convert release digests to keyed digests: read releases", "err", err)
		return
	}
	n := 0
	for _, r := range rels {
		if !strings.Contains(r.MetaJSON, `"`+bareDigestPrefix) {
			continue
		}
		var rm ReleaseMeta
		if err := json.Unmarshal([]byte(r.MetaJSON), &rm); err != nil {
			e.log.Error("convert release digests to keyed digests: decode metadata", "release", r.ID, "err", err)
			continue
		}
		rekeyMeta(&rm, e.digestKey, r.ConfigJSON)
		b, err := json.Marshal(rm)
		if err != nil {
			e.log.Error("convert release digests to keyed digests: encode metadata", "release", r.ID, "err", err)
			continue
		}
		if err := e.store.SetReleaseMeta(ctx, r.ID, string(b)); err != nil {
			e.log.Error("convert release digests to keyed digests", "release", r.ID, "err", err)
			continue
		}
		// The release's own copy, if the release is still on disk.
		dir := e.rel.Dir(r.ID)
		if _, err := os.Stat(filepath.Join(dir, release.MetaFile)); err == nil {
			if err := release.WriteMeta(dir, rm); err != nil {
				e.log.Error("convert release digests to keyed digests", "release", r.ID, "err", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			e.log.Error("convert release digests to keyed digests", "release", r.ID, "err", err)
		}
		n++
	}
	if n > 0 {
		e.log.Info("converted the bare sha256 digests of release metadata to keyed digests", "releases", n)
	}
}

// rekeyMeta converts rm's digests to keyed ones under key; configJSON is
// the release's recorded app configuration, with its environment snapshot.
func rekeyMeta(rm *ReleaseMeta, key []byte, configJSON string) {
	if d, ok := strings.CutPrefix(rm.ConfigDigest, bareDigestPrefix); ok {
		rm.ConfigDigest = ""
		if sum, err := hex.DecodeString(d); err == nil && len(sum) == 32 {
			rm.ConfigDigest = envfile.KeyedDigest(key, sum)
		}
	}
	if !strings.HasPrefix(rm.EnvDigest, bareDigestPrefix) && !anyBare(rm.Env) {
		return
	}
	app, err := decodeAppConfig(configJSON)
	if err != nil || configJSON == "" {
		// Nothing to compute them from: keys only.
		for k := range rm.Env {
			rm.Env[k] = ""
		}
		rm.EnvDigest = ""
		return
	}
	env := app.Env
	if env == nil {
		env = map[string]string{}
	}
	rm.Env = envfile.Redact(key, env)
	rm.EnvDigest = envfile.Digest(key, env)
}

func anyBare(m map[string]string) bool {
	for _, v := range m {
		if strings.HasPrefix(v, bareDigestPrefix) {
			return true
		}
	}
	return false
}
