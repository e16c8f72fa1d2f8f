// Package kubeauth puts Kubernetes-delegated authentication and
// authorization in front of kubemon's plain HTTP API (the PromQL API, the
// Heapster model API, /metrics, the UI):
//
//   - Authentication: the request's bearer token is checked with a
//     TokenReview against the Kubernetes API server (answers cached for
//     Options.TokenCacheTTL). No anonymous access. A request without a
//     token, or with one the API server does not accept or could not check,
//     is answered 401 with `WWW-Authenticate: Bearer realm="kubemon"`.
//     The Authorization header is removed before the request reaches the
//     wrapped handler, so a token never travels further.
//   - Authorization: a SubjectAccessReview. With Options.ResourcePrefix
//     (what kubemon uses: the prefix of its kubemon.io/v1alpha1 aggregated
//     API) it is on the resource attributes the apiserver derives for
//     prefix + path: GET /api/v1/query is verb get on resource "api",
//     subresource "query" of group kubemon.io, exactly as when the same
//     request comes through the apiserver's aggregation layer, so one rule
//     grants both paths (see the example below). Without a prefix it falls back to kube-rbac-proxy's convention,
//     non-resource attributes (the URL path, and the lowercased HTTP method
//     as verb, HEAD as "get"); kubemon does not use it for its own paths,
//     because Kubernetes' default system:discovery role grants the
//     non-resource URL "/api/*" to every authenticated user. Only an
//     explicit allow lets a request through: a denial, no opinion, or an
//     error reaching the API server is answered 403 naming the user, the
//     verb and the path.
//   - Public paths (Options.Public, matched exactly against the URL path;
//     kubemon gives /healthz, /readyz, /livez and the UI's page /) and
//     public prefixes (Options.PublicPrefixes; the UI's assets, /ui/) are
//     served without credentials.
//
// The authenticated user is put in the request's context with
// k8s.io/apiserver/pkg/endpoints/request.WithUser; handlers read it with
// request.UserFrom. Every refusal is logged at Warn and counted in
// kubemon_http_requests_refused_total{code="401"|"403"}.
//
// The rule that grants a reader kubemon's API (deploy/'s kubemon-viewer),
// "create" because Grafana's Prometheus data source sends queries as POST:
//
//	apiVersion: rbac.authorization.k8s.io/v1
//	kind: ClusterRole
//	metadata:
//	  name: kubemon-viewer
//	rules:
//	  - apiGroups: ["kubemon.io"]
//	    resources: ["*"]
//	    verbs: ["get", "list", "create"]
//
// kubemon's own ServiceAccount needs the system:auth-delegator ClusterRole
// (create tokenreviews and subjectaccessreviews). /debug/pprof/* (opt-in)
// should be granted to administrators only.
//
// The wrapped handler should be an http.ServeMux (or clean paths the same
// way): a path is authorized as sent, and ServeMux redirects a path with
// "." or ".." segments to its clean form instead of serving it, so the
// redirected request is authorized again.
package kubeauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
)

// Defaults for the zero values of Options' cache TTLs.
const (
	DefaultTokenCacheTTL = 2 * time.Minute
	DefaultAllowCacheTTL = 5 * time.Minute
	DefaultDenyCacheTTL  = 30 * time.Second
)

// reviewTimeout bounds one TokenReview or SubjectAccessReview, retries
// included (the API server's own default for delegated authentication).
const reviewTimeout = 10 * time.Second

// Options configure the filter.
type Options struct {
	// Client reaches the Kubernetes API (TokenReview, SubjectAccessReview).
	// Required.
	Client kubernetes.Interface
	// Public are the URL paths served without credentials, matched
	// exactly.
	Public []string
	// PublicPrefixes are path prefixes served without credentials (the
	// web UI's assets, which hold no cluster data).
	PublicPrefixes []string
	// ResourcePrefix, when set, authorizes a request on the resource
	// attributes the Kubernetes API server derives for ResourcePrefix +
	// the request's path (an aggregated API group's prefix such as
	// "/apis/kubemon.io/v1alpha1"), instead of on the path as a
	// non-resource URL. Then one RBAC rule on that group grants the same
	// request whether it comes straight here or through the apiserver's
	// aggregation layer. It is needed when paths collide with Kubernetes'
	// own non-resource URLs: the default system:discovery role grants
	// every authenticated user "/api/*" and "/apis/*".
	ResourcePrefix string
	// TokenCacheTTL is how long a TokenReview's answer is kept (accepted or
	// not; errors are not cached). AllowCacheTTL and DenyCacheTTL are how
	// long a SubjectAccessReview's allow and non-allow are kept. 0 means
	// the Default… constants.
	TokenCacheTTL, AllowCacheTTL, DenyCacheTTL time.Duration
	// Logger receives the refusals (Warn). nil discards them.
	Logger *slog.Logger
	// Registerer receives kubemon_http_requests_refused_total. nil leaves
	// the counter unregistered.
	Registerer prometheus.Registerer
}

// Filter authenticates and authorizes requests; Handler applies it.
type Filter struct {
	authn          authenticator.Request
	authz          authorizer.Authorizer
	public         map[string]bool
	publicPrefixes []string
	prefix         string
	infos          *request.RequestInfoFactory
	log            *slog.Logger
	refused        *prometheus.CounterVec
}

// New builds a filter delegating to the Kubernetes API server o.Client
// reaches.
func New(o Options) (*Filter, error) {
	if o.Client == nil {
		return nil, errors.New("kubeauth: a Kubernetes client is required")
	}
	if o.TokenCacheTTL < 0 || o.AllowCacheTTL < 0 || o.DenyCacheTTL < 0 {
		return nil, errors.New("kubeauth: cache TTLs must not be negative")
	}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                nil, // no anonymous requests
		TokenAccessReviewClient:  o.Client.AuthenticationV1(),
		TokenAccessReviewTimeout: reviewTimeout,
		WebhookRetryBackoff:      genericoptions.DefaultAuthWebhookRetryBackoff(),
		CacheTTL:                 orDefault(o.TokenCacheTTL, DefaultTokenCacheTTL),
		APIAudiences:             nil, // the API server's own audiences
	}.New()
	if err != nil {
		return nil, fmt.Errorf("kubeauth: delegated authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: o.Client.AuthorizationV1(),
		AllowCacheTTL:             orDefault(o.AllowCacheTTL, DefaultAllowCacheTTL),
		DenyCacheTTL:              orDefault(o.DenyCacheTTL, DefaultDenyCacheTTL),
		WebhookRetryBackoff:       genericoptions.DefaultAuthWebhookRetryBackoff(),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("kubeauth: delegated authorization: %w", err)
	}
	return newFilter(authn, authz, o)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// newFilter builds a filter on any authenticator and authorizer (unit
// tests give fakes); o.Client and the TTLs are not used.
func newFilter(authn authenticator.Request, authz authorizer.Authorizer, o Options) (*Filter, error) {
	if authn == nil || authz == nil {
		return nil, errors.New("kubeauth: an authenticator and an authorizer are required")
	}
	f := &Filter{authn: authn, authz: authz, public: make(map[string]bool, len(o.Public)), log: o.Logger}
	if o.ResourcePrefix != "" {
		if !strings.HasPrefix(o.ResourcePrefix, "/apis/") || strings.Count(strings.Trim(o.ResourcePrefix, "/"), "/") != 2 {
			return nil, fmt.Errorf("kubeauth: resource prefix %q: want /apis/<group>/<version>", o.ResourcePrefix)
		}
		f.prefix = strings.TrimSuffix(o.ResourcePrefix, "/")
		f.infos = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	}
	for _, p := range o.Public {
		f.public[p] = true
	}
	for _, p := range o.PublicPrefixes {
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
			return nil, fmt.Errorf("kubeauth: public prefix %q: want a path starting and ending with /", p)
		}
		f.publicPrefixes = append(f.publicPrefixes, p)
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubemon_http_requests_refused_total",
		Help: "HTTP API requests refused by Kubernetes-delegated authentication (code 401) or authorization (code 403).",
	}, []string{"code"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(f.refused); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("kubeauth: registering metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("kubeauth: registering metrics: %w", err)
			}
			f.refused = existing // a second filter on the same registry shares the counter
		}
	}
	f.refused.WithLabelValues("401")
	f.refused.WithLabelValues("403")
	return f, nil
}

func (f *Filter) isPublic(p string) bool {
	if f.public[p] {
		return true
	}
	for _, pre := range f.publicPrefixes {
		// A cleaned path only: "/ui/../api/v1/query" is not public.
		if strings.HasPrefix(p, pre) && path.Clean(p) == p {
			return true
		}
	}
	return false
}

// Handler serves next behind the filter: public paths as they are, other
// requests only once authenticated and authorized, with the user in the
// request's context and without the Authorization header.
func (f *Filter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.isPublic(r.URL.Path) {
			next.ServeHTTP(w, withoutAuthorization(r.Context(), r))
			return
		}

		resp, ok, err := f.authn.AuthenticateRequest(r)
		if err != nil || !ok || resp == nil || resp.User == nil {
			f.refused.WithLabelValues("401").Inc()
			f.log.Warn("http request not authenticated", "status", http.StatusUnauthorized,
				"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubemon"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		u := resp.User

		attr, err := f.attributes(r, u)
		decision, reason := authorizer.DecisionDeny, ""
		if err == nil {
			ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
			decision, reason, err = f.authz.Authorize(ctx, attr)
			cancel()
		}
		if decision != authorizer.DecisionAllow { // errors and no opinion included: never through
			f.refused.WithLabelValues("403").Inc()
			f.log.Warn("http request forbidden", "status", http.StatusForbidden, "user", u.GetName(), "groups", u.GetGroups(),
				"verb", attr.Verb, "path", r.URL.Path, "apiGroup", attr.APIGroup, "resource", attr.Resource, "subresource", attr.Subresource,
				"reason", reason, "err", err)
			msg := fmt.Sprintf("forbidden: User %q cannot %s path %q", u.GetName(), attr.Verb, attr.Path)
			if attr.ResourceRequest {
				res := attr.Resource
				if attr.Subresource != "" {
					res += "/" + attr.Subresource
				}
				msg = fmt.Sprintf("forbidden: User %q cannot %s resource %q in API group %q", u.GetName(), attr.Verb, res, attr.APIGroup)
			}
			switch {
			case reason != "":
				msg += ": " + reason
			case err != nil:
				msg += ": the authorization check failed" // details in the log, not to the client
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}

		next.ServeHTTP(w, withoutAuthorization(request.WithUser(r.Context(), u), r))
	})
}

// attributes are what r is authorized as: its path as a non-resource URL,
// or, with a resource prefix, the resource attributes of prefix + path.
func (f *Filter) attributes(r *http.Request, u user.Info) (authorizer.AttributesRecord, error) {
	if f.infos == nil {
		return authorizer.AttributesRecord{User: u, Verb: verb(r.Method), Path: r.URL.Path, ResourceRequest: false}, nil
	}
	url := *r.URL
	url.Path = f.prefix + r.URL.Path
	r2 := r.WithContext(r.Context())
	r2.URL = &url
	info, err := f.infos.NewRequestInfo(r2)
	if err != nil {
		return authorizer.AttributesRecord{User: u, Path: url.Path}, err
	}
	return authorizer.AttributesRecord{
		User: u, Verb: info.Verb, Namespace: info.Namespace, APIGroup: info.APIGroup, APIVersion: info.APIVersion,
		Resource: info.Resource, Subresource: info.Subresource, Name: info.Name,
		ResourceRequest: info.IsResourceRequest, Path: info.Path,
	}, nil
}

// verb is the authorization verb of a non-resource request: the lowercased
// HTTP method, HEAD being a get.
func verb(method string) string {
	if method == http.MethodHead {
		return "get"
	}
	return strings.ToLower(method)
}

// withoutAuthorization is r with ctx and without the Authorization header
// (the caller's request and headers are left as they are).
func withoutAuthorization(ctx context.Context, r *http.Request) *http.Request {
	r2 := r.WithContext(ctx)
	if len(r.Header.Values("Authorization")) > 0 {
		r2.Header = r.Header.Clone()
		r2.Header.Del("Authorization")
	}
	return r2
}
