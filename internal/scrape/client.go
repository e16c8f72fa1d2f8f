// Package scrape fetches stats from kubelets: the HTTP client (one timeout
// for a node's whole scrape, a response-size limit, credentials), the
// decoders of /stats/summary, /metrics/resource and /metrics/cadvisor, the
// correction of a kubelet's clock skew, and Manager: one scrape loop per
// node, each at its own offset inside the interval, handing every result to
// the pipeline as soon as it is decoded.
package scrape

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/podmeta"
)

// Endpoint names the kubelet endpoint scraped for stats.
type Endpoint string

// Supported endpoints.
const (
	EndpointSummary  Endpoint = "summary"  // /stats/summary, the richest
	EndpointResource Endpoint = "resource" // /metrics/resource: CPU and working set only, as metrics-server reads
	EndpointCadvisor Endpoint = "cadvisor" // /metrics/cadvisor: CPU, memory, network, filesystem, disk IO (no page faults)
)

// ClientOptions configure a Client. Zero values take the defaults noted.
type ClientOptions struct {
	// Endpoint is the kubelet endpoint read for stats; default EndpointSummary.
	Endpoint Endpoint
	// HTTPClient carries TLS and credentials; default http.DefaultClient's transport.
	HTTPClient *http.Client
	// BearerToken, when set, is sent as "Authorization: Bearer".
	BearerToken string
	// Timeout bounds one scrape of a node as a whole (its stats, cAdvisor
	// and /pods requests together), and each Get; default 10 s.
	Timeout time.Duration
	// MaxBytes bounds each response body; default 64 MiB.
	MaxBytes int64
	// FetchPods also fetches the kubelet's /pods for requests, limits,
	// restarts and owners (NodeStats.Pods), for when discovery does not
	// know the pods.
	FetchPods bool
	// Cadvisor also fetches the kubelet's /metrics/cadvisor for what the
	// Summary API lacks: disk IO, CPU throttling (CFS) and OOM events.
	Cadvisor bool
	// PodsMaxAge bounds how long a node's /pods answer is reused while its
	// pods and container start times stay the same; default 5 minutes.
	PodsMaxAge time.Duration
}

// Client scrapes one kubelet per call.
type Client struct {
	o ClientOptions

	mu   sync.Mutex
	pods map[string]*podsCache // by node
}

// podsCache is a node's last /pods answer and the shape of the summary it
// was fetched for: any pod that comes or goes, or any container that
// (re)starts, changes the shape and so fetches /pods again.
type podsCache struct {
	pods    []model.PodMeta
	shape   uint64
	fetched time.Time
}

// NewClient returns a Client with defaults applied.
func NewClient(o ClientOptions) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.Endpoint == "" {
		o.Endpoint = EndpointSummary
	}
	if o.PodsMaxAge <= 0 {
		o.PodsMaxAge = 5 * time.Minute
	}
	return &Client{o: o, pods: map[string]*podsCache{}}
}

// ErrTooLarge is wrapped by errors for responses over the size limit.
var ErrTooLarge = errors.New("response too large")

// bufs recycles response buffers: a summary is hundreds of kilobytes, and
// growing a fresh buffer for each scrape costs more than decoding it.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Get fetches baseURL+path with the client's timeout and size limit.
func (c *Client) Get(ctx context.Context, baseURL, path string) ([]byte, error) {
	var out []byte
	err := c.fetch(ctx, baseURL, path, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, err
}

// fetch GETs baseURL+path with the client's timeout and size limit and
// hands the body to use, in a buffer reused once use returns.
func (c *Client) fetch(ctx context.Context, baseURL, path string, use func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	url := strings.TrimSuffix(baseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.o.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.BearerToken)
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 16<<20 { // do not pin a rare huge buffer
			bufs.Put(buf)
		}
	}()
	if resp.ContentLength > 0 && resp.ContentLength <= c.o.MaxBytes {
		buf.Grow(int(resp.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, c.o.MaxBytes+1)); err != nil {
		return fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if int64(buf.Len()) > c.o.MaxBytes {
		return fmt.Errorf("GET %s: %w: over %d bytes", url, ErrTooLarge, c.o.MaxBytes)
	}
	return use(buf.Bytes())
}

// Scrape fetches and decodes one node's stats (and pods, if configured),
// all its requests within one Timeout.
func (c *Client) Scrape(ctx context.Context, t model.Target) (*model.NodeStats, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	start := time.Now()
	path, decode := "/stats/summary", DecodeSummary
	switch c.o.Endpoint {
	case EndpointResource:
		path, decode = "/metrics/resource", DecodeResource
	case EndpointCadvisor:
		path, decode = "/metrics/cadvisor", DecodeCadvisor
	}
	var entries []model.Entry
	err := c.fetch(ctx, t.URL, path, func(body []byte) (err error) {
		if entries, err = decode(body, t.Node, start); err != nil {
			return fmt.Errorf("node %s: %w", t.Node, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.o.Cadvisor && c.o.Endpoint != EndpointCadvisor {
		err := c.fetch(ctx, t.URL, "/metrics/cadvisor", func(body []byte) error {
			x, err := DecodeCadvisorExtras(body)
			if err != nil {
				return fmt.Errorf("node %s: %w", t.Node, err)
			}
			mergeExtras(entries, x)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	ns := &model.NodeStats{Node: t.Node, ScrapeTime: start, Entries: entries}
	if c.o.FetchPods {
		if ns.Pods, err = c.podsFor(ctx, t, entries, start); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// podsFor returns the node's pod metadata, from the cache while the pods
// and their containers' start times are those it was fetched for.
func (c *Client) podsFor(ctx context.Context, t model.Target, entries []model.Entry, now time.Time) ([]model.PodMeta, error) {
	sh := shape(entries)
	c.mu.Lock()
	pc := c.pods[t.Node]
	c.mu.Unlock()
	if pc != nil && pc.shape == sh && now.Sub(pc.fetched) < c.o.PodsMaxAge {
		return pc.pods, nil
	}
	var pods []model.PodMeta
	err := c.fetch(ctx, t.URL, "/pods", func(body []byte) (err error) {
		if pods, err = podmeta.DecodeList(body); err != nil {
			return fmt.Errorf("node %s: %w", t.Node, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.pods[t.Node] = &podsCache{pods: pods, shape: sh, fetched: now}
	c.mu.Unlock()
	return pods, nil
}

// Forget drops what the client remembers of a node that is no longer scraped.
func (c *Client) Forget(node string) {
	c.mu.Lock()
	delete(c.pods, node)
	c.mu.Unlock()
}

// shape hashes the pods and containers of a summary with their start times,
// independently of their order. The hash is this process's own (maphash):
// it is compared only with what the same client computed.
func shape(entries []model.Entry) uint64 {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(shapeSeed)
	var start [8]byte
	for i := range entries {
		o := &entries[i].Object
		if o.Level != model.LevelPod && o.Level != model.LevelContainer {
			continue
		}
		h.Reset()
		h.WriteString(o.Namespace)
		h.WriteByte(0)
		h.WriteString(o.Pod)
		h.WriteByte(0)
		h.WriteString(o.Container)
		h.WriteByte(0)
		binary.LittleEndian.PutUint64(start[:], uint64(entries[i].Start))
		h.Write(start[:])
		sum += h.Sum64()
	}
	return sum
}

var shapeSeed = maphash.MakeSeed()
