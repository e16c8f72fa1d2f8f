package metricsapi

import (
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	genericapiserver "k8s.io/apiserver/pkg/server"
)

// HTTPAPIGroupVersion is the aggregated API group under which kubemon's
// own HTTP API is served.
var HTTPAPIGroupVersion = schema.GroupVersion{Group: "kubemon.io", Version: "v1alpha1"}

// HTTPAPIPrefix is the path under which kubemon's HTTP API is served:
// HTTPAPIPrefix + "/api/v1/query" is the PromQL API, and HTTPAPIPrefix is
// what a Grafana Prometheus data source points at (through `kubectl proxy`,
// http://127.0.0.1:8001/apis/kubemon.io/v1alpha1).
const HTTPAPIPrefix = "/apis/kubemon.io/v1alpha1"

// installHTTPAPI serves h under HTTPAPIPrefix with the group's discovery
// documents (no Kubernetes resources: the API is plain HTTP under the
// prefix). The apiserver, and this server again, authorize a request such
// as GET /apis/kubemon.io/v1alpha1/api/v1/query as verb get on resource
// "api", subresource "query" of group kubemon.io, so a role grants it with
// apiGroups [kubemon.io], resources ["*"], verbs [get, list, create] (a
// POST is create).
func installHTTPAPI(gs *genericapiserver.GenericAPIServer, h http.Handler) {
	gv := HTTPAPIGroupVersion
	group := metav1.APIGroup{
		Name:             gv.Group,
		Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: gv.String(), Version: gv.Version}},
		PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version},
	}
	gs.DiscoveryGroupManager.AddGroup(group)
	if gs.AggregatedDiscoveryGroupManager != nil {
		gs.AggregatedDiscoveryGroupManager.AddGroupVersion(gv.Group, apidiscoveryv2.APIVersionDiscovery{
			Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			Resources: []apidiscoveryv2.APIResourceDiscovery{},
		})
	}
	none := discovery.APIResourceListerFunc(func() []metav1.APIResource { return []metav1.APIResource{} })
	gs.Handler.NonGoRestfulMux.Handle("/apis/"+gv.Group, discovery.NewAPIGroupHandler(codecs, group))
	gs.Handler.NonGoRestfulMux.Handle(HTTPAPIPrefix, discovery.NewAPIVersionHandler(codecs, gv, none))
	strip := http.StripPrefix(HTTPAPIPrefix, h)
	gs.Handler.NonGoRestfulMux.HandlePrefix(HTTPAPIPrefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, HTTPAPIPrefix+"/") {
			http.NotFound(w, r)
			return
		}
		strip.ServeHTTP(w, r)
	}))
}
