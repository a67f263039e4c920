package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
)

func init() { register(newInitCmd) }

func newInitCmd(g *globals) *cobra.Command {
	var force bool
	var name, app string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented cutover.toml to start from, or add an app to it",
		Long: `Write a complete, commented cutover.toml (every field with its unit and
default) to the path given by -c, or ./cutover.toml. It refuses to overwrite
an existing file unless --force.

With --app NAME it writes the multi-app form, where one daemon runs several
apps on one proxy port, routed by Host: a new file holds [apps.NAME] as its
only app (the default app, taking every host); an existing file of that form
gets a commented [apps.NAME] appended at its end, the rest of the file left
as it was, comments included. --host (repeatable) sets the hosts of the app;
without it an appended app gets "NAME.example.com" to replace. A file of the
single-app form ([app]) is not converted: the message says how to do it.`,
		Example: `  cutover init --name shop
  cutover init --app shop --host shop.example.com
  cutover init --app blog --host blog.example.com --host www.blog.example.com`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.configPath
			if path == "" {
				path = "cutover.toml"
			}
			if app != "" {
				if name != "" {
					return usageErrorf("--name names the app of the single-app form; with --app, NAME is the app's name: give one of the two")
				}
				return initApp(g, path, app, hosts, force)
			}
			if len(hosts) > 0 {
				return usageErrorf("--host needs --app NAME: hosts route requests between the apps of the multi-app form")
			}
			if name == "" {
				wd, _ := os.Getwd() //nolint:errcheck // a default name is fine
				name = filepath.Base(wd)
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(path, flags, 0o644)
			if errors.Is(err, os.ErrExist) {
				return usageErrorf("%s already exists; use --force to overwrite it, or --app NAME to add an app to a multi-app file", path)
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(config.Example(name)); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s; edit [app] command, then run `cutover serve`\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	cmd.Flags().StringVar(&name, "name", "", "app name of the single-app form (default: the current directory's name)")
	cmd.Flags().StringVar(&app, "app", "", "write the multi-app form, or add to it, an app called `NAME`")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "with --app: a host `NAME` the app answers to, such as shop.example.com or *.shop.example.com (repeatable)")
	return cmd
}

// initApp writes a new multi-app file holding app, or appends app to the
// multi-app file at path. An existing file is replaced by rename, so a
// failure leaves it whole; a new one is created exclusively, so a file
// written meanwhile is not overwritten (unless force).
func initApp(g *globals, path, app string, hosts []string, force bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	var data []byte
	mode := os.FileMode(0o644)
	exists := false
	if !force {
		data, err = os.ReadFile(path)
		switch {
		case err == nil:
			exists = true
			if fi, err := os.Stat(path); err == nil {
				mode = fi.Mode().Perm()
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	out, err := config.AddApp(path, filepath.Dir(abs), data, app, hosts)
	if err != nil {
		return err
	}
	if !exists {
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if force {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		if err := writeFile(path, flags, mode, out); err != nil {
			if errors.Is(err, os.ErrExist) {
				return usageErrorf("%s was created meanwhile; run the command again to add %s to it", path, app)
			}
			return err
		}
		fmt.Fprintf(g.stdout, "wrote %s with app %s; edit [apps.%s] command, then run `cutover serve`\n", path, app, app)
		return nil
	}
	if target, err := filepath.EvalSymlinks(abs); err == nil {
		abs = target // replace the file a link points to, not the link
	}
	if err := replaceFile(abs, mode, out); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "added app %s to %s; edit its command and hosts in [apps.%s], then run `cutover reload`\n", app, path, app)
	return nil
}

// writeFile writes data to a file opened with flags, and syncs it.
func writeFile(path string, flags int, mode os.FileMode, data []byte) error {
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// replaceFile replaces the file at path with data: a temporary file in the
// same directory, synced, renamed over it.
func replaceFile(path string, mode os.FileMode, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name()) //nolint:errcheck // the error that matters is err
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
