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
	var name string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented cutover.toml to start from",
		Long: `Write a complete, commented cutover.toml (every field with its unit and
default) to the path given by -c, or ./cutover.toml. It refuses to overwrite
an existing file unless --force.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.configPath
			if path == "" {
				path = "cutover.toml"
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
				return usageErrorf("%s already exists; use --force to overwrite it", path)
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
	cmd.Flags().StringVar(&name, "name", "", "app name (default: the current directory's name)")
	return cmd
}
