package metricsapi

import (
	"context"
	"log/slog"
	"net/http"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// loggingAuthenticator logs the requests the delegated authenticator
// refuses (answered 401): a bad token, a client certificate from an
// unknown CA or a front proxy not allowed.
type loggingAuthenticator struct {
	authenticator.Request
	log *slog.Logger
}

func (a loggingAuthenticator) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	resp, ok, err := a.Request.AuthenticateRequest(r)
	if err != nil || !ok {
		a.log.Warn("metrics API request not authenticated", "status", http.StatusUnauthorized,
			"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return resp, ok, err
}

// loggingAuthorizer logs the requests the delegated authorizer refuses
// (answered 403) with the user, the verb and the resource.
type loggingAuthorizer struct {
	authorizer.Authorizer
	log *slog.Logger
}

func (a loggingAuthorizer) Authorize(ctx context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	d, reason, err := a.Authorizer.Authorize(ctx, attr)
	if d != authorizer.DecisionAllow {
		var user string
		var groups []string
		if u := attr.GetUser(); u != nil {
			user, groups = u.GetName(), u.GetGroups()
		}
		a.log.Warn("metrics API request forbidden", "status", http.StatusForbidden, "user", user, "groups", groups,
			"verb", attr.GetVerb(), "resource", attr.GetResource(), "namespace", attr.GetNamespace(), "name", attr.GetName(),
			"path", attr.GetPath(), "reason", reason, "err", err)
	}
	return d, reason, err
}
