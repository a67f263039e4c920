package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Phase says when a migration may run relative to the traffic switch.
type Phase string

// The phases of a migration.
const (
	// Expand migrations keep the running release working (add a column, a
	// table, an index concurrently). They run before new code boots.
	Expand Phase = "expand"
	// Contract migrations remove what only the old release needed (drop a
	// column, SET NOT NULL once backfilled). They run after it is gone.
	Contract Phase = "contract"
)

// String returns the phase name.
func (p Phase) String() string { return string(p) }

// The migration file formats LoadDir understands.
const (
	FormatAuto          = "auto"           // detect from the file names
	FormatNative        = "native"         // <id>-<name>.up.sql + .down.sql (Migratus)
	FormatGolangMigrate = "golang-migrate" // <version>_<name>.up.sql + .down.sql
	FormatGoose         = "goose"          // <version>_<name>.sql with -- +goose Up/Down
	FormatFlyway        = "flyway"         // V<version>__<desc>.sql and R__<desc>.sql, up only
)

// Formats lists the concrete formats, in detection order.
var Formats = []string{FormatNative, FormatGolangMigrate, FormatGoose, FormatFlyway}

// Script is one direction of a migration: the SQL and where it comes from.
type Script struct {
	// Path is the file the SQL was read from.
	Path string
	// SQL is the text to run (for goose, only the section of this
	// direction).
	SQL string
	// FirstLine is the 1-based line of Path where SQL starts, so that a
	// statement's line in SQL maps back to the file.
	FirstLine int
	// NoTransaction is set by "-- cutover:no-transaction" or goose's
	// "-- +goose NO TRANSACTION": run statement by statement, outside a
	// transaction.
	NoTransaction bool
}

// Migration is one versioned change read from the migrations directory.
type Migration struct {
	// ID orders migrations and identifies them in the version table: the
	// file's version (a repeatable Flyway migration's is "R__" and its
	// description).
	ID Version
	// Name is the descriptive part of the file name.
	Name string
	// Phase is Expand unless the header says "-- cutover:phase contract".
	Phase Phase
	// Up is the forward script. Its Path names the migration in messages.
	Up Script
	// Down is the reverse script, nil when the format has none (Flyway), a
	// goose file has no Down section, or a two-file format (native,
	// golang-migrate) has no .down.sql file beside the up file.
	Down *Script
	// Checksum is the hex SHA-256 of Up.SQL, recorded when applied.
	Checksum string
}

// String returns "<id> <name>" for messages.
func (m *Migration) String() string { return fmt.Sprintf("%s %s", m.ID, m.Name) }

// Repeatable reports whether m is a Flyway repeatable migration
// (R__<description>.sql): it has no version, runs after every versioned
// migration of its phase, and runs again whenever its file changes.
func (m *Migration) Repeatable() bool { return m.ID.Repeatable() }

// Set is a directory of migrations, sorted by ID.
type Set struct {
	// Dir is the directory they were read from.
	Dir string
	// Format is the concrete format of the files (never "auto").
	Format string
	// Migrations are sorted by ascending ID (Version.Compare), ids unique.
	Migrations []*Migration
}

// Find returns the migration with id, or nil.
func (s *Set) Find(id Version) *Migration {
	i, ok := slices.BinarySearchFunc(s.Migrations, id, func(m *Migration, id Version) int {
		return m.ID.Compare(id)
	})
	if !ok {
		return nil
	}
	return s.Migrations[i]
}

// Checksum returns the hex SHA-256 of an up script, as recorded in the
// version table.
func Checksum(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return hex.EncodeToString(sum[:])
}

// Name is a parsed migration file name.
type Name struct {
	ID     Version
	Name   string
	Format string
	// Direction is "up", "down", or "" for single-file formats (goose,
	// Flyway).
	Direction string
}

// The file name patterns, compiled when first used (not at start, which
// every command would pay for).
var namePatterns = sync.OnceValue(func() (p struct{ native, golang, goose, flyway, repeatable *regexp.Regexp }) {
	p.native = regexp.MustCompile(`^([0-9]+)-([^/]*)\.(up|down)\.sql$`)
	p.golang = regexp.MustCompile(`^([0-9]+)_([^/]*)\.(up|down)\.sql$`)
	p.goose = regexp.MustCompile(`^([0-9]+)_([^/]*)\.sql$`)
	p.flyway = regexp.MustCompile(`^V([0-9]+(?:[._][0-9]+)*)__([^/]*)\.sql$`)
	p.repeatable = regexp.MustCompile(`^R__([^/]+)\.sql$`)
	return p
})

// ErrNotMigration is returned by ParseName for a file name that matches no
// format.
var ErrNotMigration = errors.New("not a migration file name")

// ParseName parses a file base name in the given format (FormatAuto tries
// each in turn).
func ParseName(base, format string) (Name, error) {
	try := []string{format}
	if format == FormatAuto || format == "" {
		try = Formats
	}
	for _, f := range try {
		n, err := parseNameAs(base, f)
		if errors.Is(err, ErrNotMigration) {
			continue
		}
		return n, err
	}
	return Name{}, fmt.Errorf("%s: %w", base, ErrNotMigration)
}

func parseNameAs(base, format string) (Name, error) {
	var m []string
	switch format {
	case FormatNative:
		m = namePatterns().native.FindStringSubmatch(base)
	case FormatGolangMigrate:
		m = namePatterns().golang.FindStringSubmatch(base)
	case FormatGoose:
		if strings.HasSuffix(base, ".up.sql") || strings.HasSuffix(base, ".down.sql") {
			return Name{}, ErrNotMigration
		}
		m = namePatterns().goose.FindStringSubmatch(base)
	case FormatFlyway:
		if r := namePatterns().repeatable.FindStringSubmatch(base); r != nil {
			return Name{ID: Version(repeatablePrefix + r[1]), Name: r[1], Format: format}, nil
		}
		m = namePatterns().flyway.FindStringSubmatch(base)
	default:
		return Name{}, fmt.Errorf("unknown migration format %q (want one of auto, %s)", format, strings.Join(Formats, ", "))
	}
	if m == nil {
		return Name{}, ErrNotMigration
	}
	id, err := ParseVersion(m[1])
	if err != nil {
		return Name{}, fmt.Errorf("%s: %w", base, err)
	}
	n := Name{ID: id, Name: m[2], Format: format}
	if len(m) > 3 {
		n.Direction = m[3]
	}
	return n, nil
}

// Header holds the cutover directives of a script's leading comments.
type Header struct {
	Phase         Phase
	NoTransaction bool
}

// ParseHeader reads the directives in the leading block of comment and
// blank lines of sql: "-- cutover:phase expand|contract",
// "-- cutover:no-transaction" and goose's "-- +goose NO TRANSACTION".
// "-- cutover:allow" lines belong to the linter and are skipped. An unknown
// cutover directive is an error, so that a typo is not silently ignored.
// The error gives the 1-based line within sql.
func ParseHeader(sql string) (Header, error) {
	h := Header{Phase: Expand}
	phaseSet := false
	for i, line := range strings.Split(sql, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "--") {
			break
		}
		body := strings.TrimSpace(strings.TrimPrefix(line, "--"))
		if strings.HasPrefix(body, "+goose") {
			if strings.EqualFold(strings.Join(strings.Fields(body), " "), "+goose NO TRANSACTION") {
				h.NoTransaction = true
			}
			continue
		}
		d, ok := strings.CutPrefix(body, "cutover:")
		if !ok {
			continue
		}
		fields := strings.Fields(d)
		if len(fields) == 0 {
			return h, fmt.Errorf("line %d: empty cutover directive", i+1)
		}
		switch fields[0] {
		case "phase":
			if len(fields) != 2 || (fields[1] != string(Expand) && fields[1] != string(Contract)) {
				return h, fmt.Errorf("line %d: want \"-- cutover:phase expand\" or \"-- cutover:phase contract\", got %q", i+1, line)
			}
			if phaseSet && Phase(fields[1]) != h.Phase {
				return h, fmt.Errorf("line %d: phase given twice with different values", i+1)
			}
			h.Phase, phaseSet = Phase(fields[1]), true
		case "no-transaction":
			if len(fields) != 1 {
				return h, fmt.Errorf("line %d: \"-- cutover:no-transaction\" takes no argument, got %q", i+1, line)
			}
			h.NoTransaction = true
		case "allow":
			// The linter's suppression; it reads these itself.
		default:
			return h, fmt.Errorf("line %d: unknown directive %q (known: cutover:phase, cutover:no-transaction, cutover:allow)", i+1, "cutover:"+fields[0])
		}
	}
	return h, nil
}

// LoadDir reads and validates the migrations in dir. format is one of
// FormatAuto (or ""), FormatNative, FormatGolangMigrate, FormatGoose and
// FormatFlyway. Files that are not .sql and hidden files are ignored; a .sql
// file that does not fit the format is an error, never silently skipped.
// Every error names the file.
func LoadDir(dir, format string) (*Set, error) {
	if format == "" {
		format = FormatAuto
	}
	if format != FormatAuto && !slices.Contains(Formats, format) {
		return nil, fmt.Errorf("load migrations: unknown format %q (want auto, %s)", format, strings.Join(Formats, ", "))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		files = append(files, name)
	}
	if format == FormatAuto {
		format, err = detectFormat(dir, files)
		if err != nil {
			return nil, err
		}
	}
	set := &Set{Dir: dir, Format: format}
	if len(files) == 0 {
		return set, nil
	}
	type pair struct {
		up, down *Script
		name     Name
		upName   string
		downName string
	}
	byID := map[Version]*pair{}
	for _, f := range files {
		path := filepath.Join(dir, f)
		n, err := parseNameAs(f, format)
		if errors.Is(err, ErrNotMigration) {
			return nil, fmt.Errorf("load migrations: %s: does not match the %s format (%s)", path, format, formatHint(format))
		}
		if err != nil {
			return nil, fmt.Errorf("load migrations: %s: %w", dir, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load migrations: %w", err)
		}
		p := byID[n.ID]
		if p == nil {
			p = &pair{name: n}
			byID[n.ID] = p
		}
		dup := func(other string) error {
			return fmt.Errorf("load migrations: duplicate id %s: %s and %s", n.ID, filepath.Join(dir, other), path)
		}
		switch n.Direction {
		case "", "up":
			if p.up != nil {
				return nil, dup(p.upName)
			}
			if p.down != nil && p.name.Name != n.Name {
				return nil, dup(p.downName)
			}
			p.name, p.upName = n, f
			if format == FormatGoose {
				p.up, p.down, err = splitGoose(path, string(b))
				if err != nil {
					return nil, fmt.Errorf("load migrations: %w", err)
				}
			} else {
				p.up = &Script{Path: path, SQL: string(b), FirstLine: 1}
			}
		case "down":
			if p.down != nil {
				return nil, dup(p.downName)
			}
			if p.up != nil && p.name.Name != n.Name {
				return nil, dup(p.upName)
			}
			p.downName = f
			p.down = &Script{Path: path, SQL: string(b), FirstLine: 1}
		}
	}
	for id, p := range byID {
		if p.up == nil {
			up := strings.TrimSuffix(p.downName, ".down.sql") + ".up.sql"
			return nil, fmt.Errorf("load migrations: %s has no up file %s", filepath.Join(dir, p.downName), up)
		}
		// An up file without its down file is an up-only migration, as
		// golang-migrate and Migratus projects often are: Down stays nil
		// and `migrate down` refuses that one migration, naming the file
		// to write (see planDown).
		h, err := ParseHeader(p.up.SQL)
		if err != nil {
			return nil, fmt.Errorf("load migrations: %s: %w", p.up.Path, shiftLine(err, p.up.FirstLine))
		}
		p.up.NoTransaction = p.up.NoTransaction || h.NoTransaction
		if p.down != nil {
			dh, err := ParseHeader(p.down.SQL)
			if err != nil {
				return nil, fmt.Errorf("load migrations: %s: %w", p.down.Path, shiftLine(err, p.down.FirstLine))
			}
			p.down.NoTransaction = p.down.NoTransaction || dh.NoTransaction
		}
		set.Migrations = append(set.Migrations, &Migration{
			ID:       id,
			Name:     p.name.Name,
			Phase:    h.Phase,
			Up:       *p.up,
			Down:     p.down,
			Checksum: Checksum(p.up.SQL),
		})
	}
	slices.SortFunc(set.Migrations, func(a, b *Migration) int {
		if c := a.ID.Compare(b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Up.Path, b.Up.Path)
	})
	// Flyway's 1 and 1.0 are one version written twice.
	for i := 1; i < len(set.Migrations); i++ {
		if a, b := set.Migrations[i-1], set.Migrations[i]; a.ID.Compare(b.ID) == 0 {
			return nil, fmt.Errorf("load migrations: duplicate id %s: %s and %s are the same version", a.ID, a.Up.Path, b.Up.Path)
		}
	}
	return set, nil
}

// shiftLine leaves err unchanged; ParseHeader's line numbers are relative to
// the script, and FirstLine is 1 for every format but goose, where the
// section's own offset is added.
func shiftLine(err error, firstLine int) error {
	if firstLine <= 1 {
		return err
	}
	return fmt.Errorf("%w (lines counted from line %d, the start of the section)", err, firstLine)
}

func formatHint(format string) string {
	switch format {
	case FormatNative:
		return "<id>-<name>.up.sql and <id>-<name>.down.sql"
	case FormatGolangMigrate:
		return "<version>_<name>.up.sql and <version>_<name>.down.sql"
	case FormatGoose:
		return "<version>_<name>.sql with -- +goose Up and -- +goose Down"
	case FormatFlyway:
		return "V<version>__<description>.sql or R__<description>.sql"
	}
	return format
}

// detectFormat picks the one format all .sql files fit; it refuses a
// directory that mixes formats, naming a file of each.
func detectFormat(dir string, files []string) (string, error) {
	if len(files) == 0 {
		return FormatNative, nil
	}
	first := map[string]string{}
	for _, f := range files {
		n, err := ParseName(f, FormatAuto)
		if err != nil {
			return "", fmt.Errorf("load migrations: %s: not a migration file name in any known format (%s; %s; %s; %s)",
				filepath.Join(dir, f), formatHint(FormatNative), formatHint(FormatGolangMigrate), formatHint(FormatGoose), formatHint(FormatFlyway))
		}
		if _, ok := first[n.Format]; !ok {
			first[n.Format] = f
		}
	}
	if len(first) == 1 {
		for f := range first {
			return f, nil
		}
	}
	var kinds []string
	for _, f := range Formats {
		if name, ok := first[f]; ok {
			kinds = append(kinds, fmt.Sprintf("%s is %s", name, f))
		}
	}
	return "", fmt.Errorf("load migrations: %s mixes formats (%s); keep one format or set [database] format", dir, strings.Join(kinds, ", "))
}

// splitGoose cuts a goose file into its Up and Down sections. Directives in
// the file's leading comments (before "-- +goose Up") apply to both.
func splitGoose(path, text string) (up, down *Script, err error) {
	lines := strings.SplitAfter(text, "\n")
	upAt, downAt := -1, -1
	noTx := false
	for i, l := range lines {
		f := strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "--")), " ")
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			continue
		}
		switch strings.ToLower(f) {
		case "+goose up":
			if upAt >= 0 {
				return nil, nil, fmt.Errorf("%s:%d: second -- +goose Up", path, i+1)
			}
			upAt = i
		case "+goose down":
			if downAt >= 0 {
				return nil, nil, fmt.Errorf("%s:%d: second -- +goose Down", path, i+1)
			}
			if upAt < 0 {
				return nil, nil, fmt.Errorf("%s:%d: -- +goose Down before -- +goose Up", path, i+1)
			}
			downAt = i
		case "+goose no transaction":
			noTx = true
		}
	}
	if upAt < 0 {
		return nil, nil, fmt.Errorf("%s: no -- +goose Up annotation", path)
	}
	head := strings.Join(lines[:upAt], "")
	end := len(lines)
	if downAt >= 0 {
		end = downAt
	}
	up = &Script{Path: path, SQL: head + strings.Join(lines[upAt:end], ""), FirstLine: 1, NoTransaction: noTx}
	if downAt >= 0 {
		down = &Script{Path: path, SQL: strings.Join(lines[downAt:], ""), FirstLine: downAt + 1, NoTransaction: noTx}
		if strings.TrimSpace(stripComments(down.SQL)) == "" {
			// An empty Down section means "cannot be undone", same as none.
			down.SQL = ""
		}
	}
	return up, down, nil
}

// stripComments drops whole-line "--" comments, to tell an empty script
// from one with SQL.
func stripComments(sql string) string {
	var b strings.Builder
	for _, l := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// missingDownFile returns the down file a two-file format would read for
// m, or "" for the single-file formats (goose, Flyway).
func missingDownFile(m *Migration) string {
	if base, ok := strings.CutSuffix(m.Up.Path, ".up.sql"); ok {
		return base + ".down.sql"
	}
	return ""
}
