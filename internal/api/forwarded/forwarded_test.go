package forwarded

import (
	"errors"
	"net/http"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

func TestSetFrom(t *testing.T) {
	u := &user.DefaultInfo{Name: "system:serviceaccount:team:ci", UID: "u-1",
		Groups: []string{"system:serviceaccounts", "system:authenticated"},
		Extra:  map[string][]string{"authentication.kubernetes.io/pod-name": {"ci-0"}, "scopes": {"a", "b"}}}
	h := http.Header{}
	// What a client could have sent to pass for someone else.
	h.Set("Authorization", "Bearer theirs")
	h.Set(HeaderUser, "system:admin")
	h.Add(HeaderGroup, "system:masters")
	h.Set(HeaderExtraPrefix+"forged", "1")
	h.Set("X-Remote-User", "system:admin")
	h.Set("X-Remote-Group", "system:masters")
	h.Set("Impersonate-User", "system:admin")
	h.Set("Accept", "application/json")
	Set(h, u, "tok")

	if got := h.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("Authorization %q", got)
	}
	for _, k := range []string{"X-Remote-User", "X-Remote-Group", "Impersonate-User", HeaderExtraPrefix + "forged"} {
		if v := h.Values(k); len(v) != 0 {
			t.Errorf("%s survived: %q", k, v)
		}
	}
	if h.Get("Accept") != "application/json" {
		t.Error("an unrelated header was removed")
	}
	got, ok, err := From(h)
	if err != nil || !ok {
		t.Fatalf("From: %v %v", ok, err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Errorf("From(Set(u)) = %+v, want %+v", got, u)
	}
	if _, ok, err := From(http.Header{}); ok || err != nil {
		t.Errorf("From(no headers) = %v, %v", ok, err)
	}
	bad := http.Header{}
	bad.Set(HeaderUser, "x")
	bad.Set(HeaderExtraPrefix+"%zz", "1")
	if _, _, err := From(bad); err == nil {
		t.Error("From: a badly escaped extra key gave no error")
	}
}

// tokenAs is a token authenticator that knows one token, for Audience, as
// user name; like the API server, it refuses it when the review asks for
// no audience (then the API server's own).
func tokenAs(token, name string, calls *int) authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		*calls++
		if auds, _ := authenticator.AudiencesFrom(r.Context()); !auds.Has(Audience) {
			return nil, false, errors.New("token audiences [kubemon.io/frontdoor] is invalid for the target audiences [https://kubernetes.default.svc]")
		}
		switch r.Header.Get("Authorization") {
		case "Bearer " + token:
			return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
		case "Bearer broken":
			return nil, false, errors.New("tokenreview: connection refused")
		}
		return nil, false, nil
	})
}

func TestAuthenticator(t *testing.T) {
	const trusted = "system:serviceaccount:kubemon:kubemon"
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}}
	req := func(token string, fwd bool) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://kubemon/apis/metrics.k8s.io/v1beta1/nodes", nil)
		if fwd {
			Set(r.Header, alice, token)
		} else if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return r
	}
	for _, tc := range []struct {
		name     string
		tokenFor string // who the token reviews as
		token    string
		fwd      bool
		want     string // user; "" with wantErr or not ok
		wantErr  bool
		calls    int
	}{
		{name: "front door", tokenFor: trusted, token: "fd", fwd: true, want: "alice", calls: 1},
		{name: "no forwarded headers: not this authenticator's", tokenFor: trusted, token: "fd", calls: 0},
		{name: "another service account", tokenFor: "system:serviceaccount:team:ci", token: "fd", fwd: true, wantErr: true, calls: 1},
		{name: "token not accepted (other audience)", tokenFor: trusted, token: "other", fwd: true, wantErr: true, calls: 1},
		{name: "review failed", tokenFor: trusted, token: "broken", fwd: true, wantErr: true, calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			a := &Authenticator{Token: tokenAs("fd", tc.tokenFor, &calls), Trusted: trusted}
			r := req(tc.token, tc.fwd)
			resp, ok, err := a.AuthenticateRequest(r)
			if calls != tc.calls {
				t.Errorf("token reviews: %d, want %d", calls, tc.calls)
			}
			if tc.wantErr {
				if err == nil || ok {
					t.Fatalf("want an error, got %v %v", ok, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("authenticated %+v", resp.User)
				}
				return
			}
			if !ok || resp.User.GetName() != tc.want || !reflect.DeepEqual(resp.User.GetGroups(), alice.Groups) {
				t.Fatalf("got %v %+v", ok, resp)
			}
			if r.Header.Get(HeaderUser) != "" || r.Header.Get("Authorization") != "" {
				t.Errorf("headers left for the handlers: %v", r.Header)
			}
		})
	}
	if _, err := New(nil, trusted); err == nil {
		t.Error("New without a client: no error")
	}
}
