package scrape

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemon/kubemon/internal/discovery"
	"github.com/kubemon/kubemon/internal/model"
)

// DecodePods decodes the kubelet's /pods answer (a v1.PodList) into pod
// metadata: requests, limits, restart counts, labels and the owning workload.
func DecodePods(data []byte) ([]model.PodMeta, error) {
	var list corev1.PodList
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode pods: %w", err)
	}
	out := make([]model.PodMeta, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, discovery.PodMeta(&list.Items[i]))
	}
	return out, nil
}
