package load

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a load run, in phases.
type Report struct {
	Total   Phase
	Phases  []Phase
	Results []Result // every request, by start time
}

// Phase summarises the requests sent during one phase.
type Phase struct {
	Name     string
	Start    time.Time
	Requests int
	Failed   int
	P50, P99 time.Duration
	Max      time.Duration
	Versions map[string]int // answering version → requests
	Errors   map[string]int // error text → requests
}

func newReport(results []Result, marks []mark) Report {
	rep := Report{Results: results}
	phases := make([][]Result, len(marks))
	for _, r := range results {
		i := sort.Search(len(marks), func(i int) bool { return marks[i].at.After(r.Start) }) - 1
		if i < 0 {
			i = 0
		}
		phases[i] = append(phases[i], r)
	}
	for i, m := range marks {
		p := summarize(m.name, phases[i])
		p.Start = m.at
		rep.Phases = append(rep.Phases, p)
	}
	rep.Total = summarize("total", results)
	return rep
}

func summarize(name string, rs []Result) Phase {
	p := Phase{Name: name, Requests: len(rs), Versions: map[string]int{}, Errors: map[string]int{}}
	lat := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		if r.Failed() {
			p.Failed++
			p.Errors[r.Err]++
		}
		if r.Version != "" {
			p.Versions[r.Version]++
		}
		lat = append(lat, r.End.Sub(r.Start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p.P50, p.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	if len(lat) > 0 {
		p.Max = lat[len(lat)-1]
	}
	return p
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

// VersionList returns "v1:120 v2:80" for a phase.
func (p Phase) VersionList() string {
	keys := make([]string, 0, len(p.Versions))
	for k := range p.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, p.Versions[k])
	}
	return strings.Join(parts, " ")
}

// Print writes the report as a table.
func (r Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\tfailed\tp50\tp99\tmax\tanswered by\t")
	row := func(p Phase) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", p.Name, p.Requests, p.Failed,
			round(p.P50), round(p.P99), round(p.Max), p.VersionList())
	}
	for _, p := range r.Phases {
		row(p)
	}
	row(r.Total)
	tw.Flush()
	if r.Total.Failed > 0 {
		fmt.Fprintln(w, "failures:")
		for e, n := range r.Total.Errors {
			fmt.Fprintf(w, "  %6d  %s\n", n, e)
		}
	}
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}
