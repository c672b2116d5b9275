package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// Endpoint is the HTTP address (on loopback) of one target's serve.
type Endpoint struct {
	Target string
	Addr   string
}

// Front is the one HTTP face of a serve over many targets: /metrics gathers
// every target's metrics with a target label, /healthz answers while the
// process runs, /readyz is ready when every target is.
type Front struct {
	Endpoints []Endpoint
	// Timeout bounds each call to a target's endpoint (default 5s).
	Timeout time.Duration
	client  http.Client
}

// Handler serves /metrics, /healthz and /readyz.
func (f *Front) Handler() http.Handler {
	if f.Timeout <= 0 {
		f.Timeout = 5 * time.Second
	}
	f.client.Timeout = f.Timeout
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", f.metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", f.readyz)
	return mux
}

// each calls fn for every endpoint at once and waits.
func (f *Front) each(fn func(i int, ep Endpoint)) {
	var wg sync.WaitGroup
	for i, ep := range f.Endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, ep)
		}()
	}
	wg.Wait()
}

func (f *Front) get(ctx context.Context, ep Endpoint, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.Addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

func (f *Front) readyz(w http.ResponseWriter, r *http.Request) {
	reasons := make([]string, len(f.Endpoints))
	f.each(func(i int, ep Endpoint) {
		code, body, err := f.get(r.Context(), ep, "/readyz")
		switch {
		case err != nil:
			reasons[i] = ep.Target + ": not answering: " + err.Error()
		case code != http.StatusOK:
			reasons[i] = ep.Target + ": " + strings.TrimSpace(string(body))
		}
	})
	var not []string
	for _, r := range reasons {
		if r != "" {
			not = append(not, r)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(not) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(not, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

func (f *Front) metrics(w http.ResponseWriter, r *http.Request) {
	fams, errs := f.Gather(r.Context())
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			return
		}
	}
	for _, err := range errs {
		fmt.Fprintf(w, "# %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
}

// Gather reads every target's /metrics and merges them, each series with a
// target label, families in name order. A target that does not answer is
// left out, with its error.
func (f *Front) Gather(ctx context.Context) ([]*dto.MetricFamily, []error) {
	got := make([]map[string]*dto.MetricFamily, len(f.Endpoints))
	errs := make([]error, len(f.Endpoints))
	f.each(func(i int, ep Endpoint) {
		code, body, err := f.get(ctx, ep, "/metrics")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("HTTP %d", code)
		}
		if err == nil {
			p := expfmt.NewTextParser(model.UTF8Validation)
			got[i], err = p.TextToMetricFamilies(strings.NewReader(string(body)))
		}
		if err != nil {
			errs[i] = fmt.Errorf("target %s: metrics: %w", ep.Target, err)
		}
	})
	merged := map[string]*dto.MetricFamily{}
	for i, fams := range got {
		for name, mf := range fams {
			into := merged[name]
			if into == nil {
				into = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				merged[name] = into
			}
			for _, m := range mf.Metric {
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("target"), Value: proto.String(f.Endpoints[i].Target)})
				into.Metric = append(into.Metric, m)
			}
		}
	}
	names := make([]string, 0, len(merged))
	for n := range merged {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*dto.MetricFamily, 0, len(names))
	for _, n := range names {
		out = append(out, merged[n])
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return out, failed
}
