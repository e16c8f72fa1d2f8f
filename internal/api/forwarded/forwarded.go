// Package forwarded carries a caller's identity from kubemon's front door
// (the HTTPS proxy in each replica's pod, `kubemon frontdoor`) to a
// kubemon's metrics API, which authorizes the request as that caller.
//
// The front door authenticates each request itself (the apiserver's
// front-proxy client certificate, or a bearer token it reviews), then sends
// it on with the caller's identity in the X-Kubemon-Forwarded-* headers and
// its own credential: a ServiceAccount token bound to the audience Audience
// (a projected volume), which the Kubernetes API server rejects for
// anything else. The metrics API believes the headers only when that token
// reviews (TokenReview, with Audience) as the one user it is told to trust,
// kubemon's own ServiceAccount; a request with the headers and any other
// credential is refused (401). Requests without the headers are
// authenticated as before.
package forwarded

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// Audience is the audience of the front door's token.
const Audience = "kubemon.io/frontdoor"

// The headers that carry the caller's identity. A group is one value of
// HeaderGroup each; an extra's key follows HeaderExtraPrefix, escaped as a
// URL path segment (as Kubernetes' X-Remote-Extra- headers are).
const (
	HeaderUser        = "X-Kubemon-Forwarded-User"
	HeaderUID         = "X-Kubemon-Forwarded-Uid"
	HeaderGroup       = "X-Kubemon-Forwarded-Group"
	HeaderExtraPrefix = "X-Kubemon-Forwarded-Extra-"
)

// Set makes h carry u's identity and the front door's token: it first
// removes every header a client could have sent to pass for someone else
// (the forwarded headers, Authorization, Kubernetes' X-Remote-* and
// Impersonate-*).
func Set(h http.Header, u user.Info, token string) {
	Clear(h)
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-remote-") || strings.HasPrefix(lk, "impersonate-") {
			delete(h, k)
		}
	}
	h.Set("Authorization", "Bearer "+token)
	h.Set(HeaderUser, u.GetName())
	if uid := u.GetUID(); uid != "" {
		h.Set(HeaderUID, uid)
	}
	for _, g := range u.GetGroups() {
		h.Add(HeaderGroup, g)
	}
	for k, vs := range u.GetExtra() {
		for _, v := range vs {
			h.Add(HeaderExtraPrefix+url.PathEscape(k), v)
		}
	}
}

// Clear removes the forwarded headers from h.
func Clear(h http.Header) {
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), strings.ToLower(HeaderExtraPrefix)) {
			delete(h, k)
		}
	}
	h.Del(HeaderUser)
	h.Del(HeaderUID)
	h.Del(HeaderGroup)
}

// From reads the identity Set put in h; ok is false without HeaderUser.
func From(h http.Header) (u *user.DefaultInfo, ok bool, err error) {
	name := h.Get(HeaderUser)
	if name == "" {
		return nil, false, nil
	}
	u = &user.DefaultInfo{Name: name, UID: h.Get(HeaderUID), Groups: h.Values(HeaderGroup)}
	prefix := strings.ToLower(HeaderExtraPrefix)
	for k, vs := range h {
		if !strings.HasPrefix(strings.ToLower(k), prefix) {
			continue
		}
		key, err := url.PathUnescape(k[len(prefix):])
		if err != nil {
			return nil, false, fmt.Errorf("forwarded extra %q: %w", k, err)
		}
		if u.Extra == nil {
			u.Extra = map[string][]string{}
		}
		key = strings.ToLower(key)
		u.Extra[key] = append(u.Extra[key], vs...)
	}
	return u, true, nil
}

// Authenticator believes the forwarded headers of requests whose bearer
// token authenticates as Trusted.
type Authenticator struct {
	// Token authenticates the bearer token for the audiences in the
	// request's context (AuthenticateRequest puts Audience there).
	Token authenticator.Request
	// Trusted is the user the front door runs as, e.g.
	// system:serviceaccount:kubemon:kubemon.
	Trusted string
}

// TokenCacheTTL is how long a review of the front door's token is kept.
const TokenCacheTTL = time.Minute

// New returns an Authenticator reviewing tokens with the API server c
// reaches (TokenReview with Audience, answers cached TokenCacheTTL).
func New(c authenticationv1.AuthenticationV1Interface, trusted string) (*Authenticator, error) {
	if c == nil || trusted == "" {
		return nil, errors.New("forwarded: a TokenReview client and the trusted user are required")
	}
	backoff := genericoptions.DefaultAuthWebhookRetryBackoff()
	token, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:  c,
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      backoff,
		CacheTTL:                 TokenCacheTTL,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("forwarded: token review: %w", err)
	}
	return &Authenticator{Token: token, Trusted: trusted}, nil
}

// errUntrusted answers a request that carries forwarded headers without
// the trusted credential.
var errUntrusted = errors.New("forwarded identity from a caller that is not kubemon's front door")

// AuthenticateRequest implements authenticator.Request: nothing (ok false,
// no error) without the forwarded headers, else the forwarded user or an
// error.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	if r.Header.Get(HeaderUser) == "" {
		return nil, false, nil
	}
	// The review asks for Audience: a token for any other audience (the
	// API server's own) is refused.
	resp, ok, err := a.Token.AuthenticateRequest(r.WithContext(authenticator.WithAudiences(r.Context(), authenticator.Audiences{Audience})))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errUntrusted, err)
	}
	if !ok || resp.User == nil || resp.User.GetName() != a.Trusted {
		return nil, false, errUntrusted
	}
	u, ok, err := From(r.Header)
	if err != nil || !ok {
		return nil, false, fmt.Errorf("%w: %w", errUntrusted, err)
	}
	Clear(r.Header)
	r.Header.Del("Authorization")
	return &authenticator.Response{User: u}, true, nil
}
