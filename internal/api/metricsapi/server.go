// Package metricsapi serves the resource metrics API (metrics.k8s.io
// v1beta1: NodeMetrics and PodMetrics, what `kubectl top` and the
// HorizontalPodAutoscaler read) from kubemon's store, as an aggregated API
// server built on k8s.io/apiserver: HTTPS with given or self-signed
// certificates, authentication and authorization delegated to the
// Kubernetes API server (front-proxy client certificates, TokenReview,
// SubjectAccessReview), discovery and OpenAPI documents. The same server
// carries kubemon's HTTP API as the aggregated group kubemon.io/v1alpha1.
package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/union"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/metrics/pkg/apis/metrics"
	"k8s.io/metrics/pkg/apis/metrics/install"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/kubemon/kubemon/internal/api/metricsapi/openapi"
)

var (
	// scheme holds the metrics.k8s.io types (internal and v1beta1) and the
	// meta types every API group serves.
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	install.Install(scheme)
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	scheme.AddUnversionedTypes(schema.GroupVersion{Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	// PodMetrics may also be selected by the pod's node (kubectl top pod
	// --field-selector spec.nodeName=...); the generic server refuses
	// fields not declared here before the storage sees them.
	utilruntime.Must(scheme.AddFieldLabelConversionFunc(v1beta1.SchemeGroupVersion.WithKind("PodMetrics"),
		func(label, value string) (string, string, error) {
			if !podFields[label] {
				return "", "", fmt.Errorf("field label not supported: %s", label)
			}
			return label, value, nil
		}))
}

// Options configure the aggregated API server.
type Options struct {
	// Listener is where HTTPS is served (required).
	Listener net.Listener
	// CertFile and KeyFile are the serving certificate and key (PEM). When
	// both are empty a self-signed certificate for localhost is made in
	// memory, as metrics-server does; the APIService must then skip TLS
	// verification.
	CertFile, KeyFile string
	// Kubeconfig reaches the Kubernetes API server that authentication and
	// authorization are delegated to (TokenReview, SubjectAccessReview and
	// the kube-system/extension-apiserver-authentication ConfigMap that
	// names the front proxy's CA); "" means the in-cluster configuration.
	Kubeconfig string
	// Metrics computes the metrics; Nodes and Pods are the objects they are
	// joined to (label selectors select on their labels).
	Metrics *Reader
	Nodes   listerscorev1.NodeLister
	Pods    listerscorev1.PodLister
	// HTTPAPI, when set, is kubemon's own HTTP API (PromQL, model API,
	// /metrics, UI), served under HTTPAPIPrefix as the aggregated API
	// group kubemon.io/v1alpha1: through the apiserver (kubectl proxy,
	// APIService v1alpha1.kubemon.io) a person reaches it under their own
	// RBAC. Requests reach it authenticated and authorized like every
	// other request of this server, with the prefix stripped.
	HTTPAPI http.Handler
	// Forwarded, when set, authenticates first: the requests kubemon's
	// front door forwards, as the caller it names (package forwarded).
	// Its error refuses the request; a request it does not claim goes on
	// to the delegated authentication.
	Forwarded authenticator.Request
	// Version is kubemon's version, shown in the OpenAPI document.
	Version string
	Logger  *slog.Logger

	// noAuth serves without authentication and authorization: unit tests
	// of the served documents only.
	noAuth bool
}

// Server is the aggregated API server.
type Server struct {
	gs      *genericapiserver.GenericAPIServer
	serving atomic.Bool
}

// New builds the server; Run serves it.
func New(o Options) (*Server, error) {
	if o.Listener == nil || o.Metrics == nil || o.Nodes == nil || o.Pods == nil {
		return nil, errors.New("metrics API: listener, metrics, nodes and pods are required")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("metrics API: give both a certificate and a key file, or neither for a self-signed certificate")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "metrics-api")

	serving := genericoptions.NewSecureServingOptions().WithLoopback()
	serving.Listener = o.Listener
	serving.ServerCert.CertDirectory = ""
	serving.ServerCert.CertKey.CertFile, serving.ServerCert.CertKey.KeyFile = o.CertFile, o.KeyFile
	if err := serving.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}); err != nil {
		return nil, fmt.Errorf("metrics API: self-signed certificate: %w", err)
	}

	cfg := genericapiserver.NewConfig(codecs)
	cfg.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(apiVersion, "", "")
	cfg.EnableMetrics = false   // kubemon's own /metrics is on the main listener
	cfg.EnableProfiling = false // and so is /debug/pprof
	if err := serving.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("metrics API: serving: %w", err)
	}
	version := strings.TrimPrefix(o.Version, "v")
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, openapinamer.NewDefinitionNamer(scheme))
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = "kubemon metrics.k8s.io", version
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, openapinamer.NewDefinitionNamer(scheme))
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = "kubemon metrics.k8s.io", version

	if !o.noAuth {
		authn := genericoptions.NewDelegatingAuthenticationOptions()
		authn.RemoteKubeConfigFile = o.Kubeconfig
		if err := authn.ApplyTo(&cfg.Authentication, cfg.SecureServing, cfg.OpenAPIConfig); err != nil {
			return nil, fmt.Errorf("metrics API: delegated authentication: %w", err)
		}
		authz := genericoptions.NewDelegatingAuthorizationOptions()
		authz.RemoteKubeConfigFile = o.Kubeconfig
		if err := authz.ApplyTo(&cfg.Authorization); err != nil {
			return nil, fmt.Errorf("metrics API: delegated authorization: %w", err)
		}
		if o.Forwarded != nil {
			cfg.Authentication.Authenticator = union.NewFailOnError(o.Forwarded, cfg.Authentication.Authenticator)
		}
		cfg.Authentication.Authenticator = loggingAuthenticator{cfg.Authentication.Authenticator, log}
		cfg.Authorization.Authorizer = loggingAuthorizer{cfg.Authorization.Authorizer, log}
	}

	gs, err := cfg.Complete(nil).New("kubemon-metrics-api", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("metrics API: %w", err)
	}
	info := genericapiserver.NewDefaultAPIGroupInfo(metrics.GroupName, scheme, metav1.ParameterCodec, codecs)
	info.VersionedResourcesStorageMap[v1beta1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"nodes": &nodeStorage{metrics: o.Metrics, nodes: o.Nodes, log: log, now: time.Now},
		"pods":  &podStorage{metrics: o.Metrics, pods: o.Pods, log: log, now: time.Now},
	}
	if err := gs.InstallAPIGroup(&info); err != nil {
		return nil, fmt.Errorf("metrics API: installing metrics.k8s.io: %w", err)
	}
	if o.HTTPAPI != nil {
		installHTTPAPI(gs, o.HTTPAPI)
	}
	s := &Server{gs: gs}
	if err := gs.AddPostStartHook("kubemon-serving", func(genericapiserver.PostStartHookContext) error {
		s.serving.Store(true)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("metrics API: %w", err)
	}
	return s, nil
}

// apiVersion is the Kubernetes API version the served types come from.
const apiVersion = "1.37"

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	defer s.serving.Store(false)
	return s.gs.PrepareRun().RunWithContext(ctx)
}

// Serving reports whether the server has started serving and not stopped.
func (s *Server) Serving() bool { return s.serving.Load() }
