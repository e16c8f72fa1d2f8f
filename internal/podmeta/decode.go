package podmeta

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemon/kubemon/internal/jsonscan"
	"github.com/kubemon/kubemon/internal/model"
)

// DecodeList decodes a v1.PodList (the kubelet's /pods answer) into pod
// metadata, each pod's workload guessed from its controller's name (see
// FromPod).
//
// It reads the list in one pass with jsonscan, into a corev1.Pod holding
// only the fields FromPod reads, rather than the whole Pod with
// encoding/json: a kubelet's /pods is read again whenever the node's pods
// change, which at thousands of nodes was a seventh of kubemon's CPU.
// decode_test.go holds it to encoding/json on fixtures and under fuzzing.
// Unlike encoding/json it checks the quantities of resources other than
// cpu and memory for syntax only, and matches keys by exact case.
func DecodeList(data []byte) ([]model.PodMeta, error) {
	var d decoder
	d.s.Reset(data)
	out := d.list()
	if err := d.s.End(); err != nil {
		return nil, fmt.Errorf("decode pods: %w", err)
	}
	return out, nil
}

type decoder struct{ s jsonscan.Scanner }

func (d *decoder) fail(what string, k jsonscan.Kind) {
	d.s.Fail(fmt.Errorf("offset %d: %s: want %s", d.s.Offset(), what, k))
}

// object opens what's object; false for null (no error) or another kind
// (an error).
func (d *decoder) object(what string) bool {
	switch k := d.s.Peek(); k {
	case jsonscan.Object, jsonscan.Null, jsonscan.Invalid:
		return d.s.Object()
	default:
		d.fail(what+" is a "+k.String(), jsonscan.Object)
		return false
	}
}

func (d *decoder) array(what string) bool {
	switch k := d.s.Peek(); k {
	case jsonscan.Array, jsonscan.Null, jsonscan.Invalid:
		return d.s.Array()
	default:
		d.fail(what+" is a "+k.String(), jsonscan.Array)
		return false
	}
}

func (d *decoder) str(what string) string {
	switch k := d.s.Peek(); k {
	case jsonscan.String, jsonscan.Null, jsonscan.Invalid:
		return string(d.s.String())
	default:
		d.fail(what+" is a "+k.String(), jsonscan.String)
		return ""
	}
}

func (d *decoder) int32(what string) int32 {
	switch k := d.s.Peek(); k {
	case jsonscan.Number, jsonscan.Null, jsonscan.Invalid:
		b := d.s.Number()
		if b == nil {
			return 0
		}
		n, err := strconv.ParseInt(string(b), 10, 32)
		if err != nil {
			d.s.Fail(fmt.Errorf("%s: want a 32-bit integer, got %s", what, b))
		}
		return int32(n)
	default:
		d.fail(what+" is a "+k.String(), jsonscan.Number)
		return 0
	}
}

// time reads an RFC 3339 time as metav1.Time does: null is the zero time.
func (d *decoder) time(what string) metav1.Time {
	switch k := d.s.Peek(); k {
	case jsonscan.Null:
		d.s.Null()
		return metav1.Time{}
	case jsonscan.String:
		s := string(d.s.String())
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d.s.Fail(fmt.Errorf("%s: %w", what, err))
		}
		return metav1.NewTime(t.Local())
	case jsonscan.Invalid:
		d.s.Skip() // the syntax error
	default:
		d.fail(what+" is a "+k.String(), jsonscan.String)
	}
	return metav1.Time{}
}

func (d *decoder) list() []model.PodMeta {
	var out []model.PodMeta
	if d.s.Peek() == jsonscan.Null {
		d.s.Null()
		return out
	}
	if !d.object("the list") { // an error: null is read above
		return nil
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		if string(key) != "items" {
			d.s.Skip()
			continue
		}
		if !d.array("items") {
			continue
		}
		for d.s.Next() {
			var p corev1.Pod
			if d.s.Peek() == jsonscan.Null {
				d.s.Null()
			} else {
				d.pod(&p)
			}
			if d.s.Err() != nil {
				return nil
			}
			out = append(out, FromPod(&p))
		}
	}
	return out
}

func (d *decoder) pod(p *corev1.Pod) {
	if !d.object("a pod") {
		return
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "metadata":
			d.metadata(&p.ObjectMeta)
		case "spec":
			d.spec(&p.Spec)
		case "status":
			d.status(&p.Status)
		default:
			d.s.Skip()
		}
	}
}

func (d *decoder) metadata(m *metav1.ObjectMeta) {
	if !d.object("metadata") {
		return
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "name":
			m.Name = d.str("metadata.name")
		case "namespace":
			m.Namespace = d.str("metadata.namespace")
		case "uid":
			m.UID = types.UID(d.str("metadata.uid"))
		case "labels":
			m.Labels = nil
			if d.object("metadata.labels") {
				m.Labels = map[string]string{}
				for k, ok := d.s.Key(); ok; k, ok = d.s.Key() {
					name := string(k)
					m.Labels[name] = d.str("metadata.labels")
				}
			}
		case "ownerReferences":
			m.OwnerReferences = nil
			if d.array("metadata.ownerReferences") {
				for d.s.Next() {
					m.OwnerReferences = append(m.OwnerReferences, d.ownerRef())
				}
			}
		default:
			d.s.Skip()
		}
	}
}

func (d *decoder) ownerRef() (r metav1.OwnerReference) {
	if !d.object("an owner reference") {
		return r
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "kind":
			r.Kind = d.str("ownerReferences.kind")
		case "name":
			r.Name = d.str("ownerReferences.name")
		case "controller":
			r.Controller = nil
			if v, ok := d.s.Bool(); ok {
				r.Controller = &v
			}
		default:
			d.s.Skip()
		}
	}
	return r
}

func (d *decoder) spec(s *corev1.PodSpec) {
	if !d.object("spec") {
		return
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "nodeName":
			s.NodeName = d.str("spec.nodeName")
		case "restartPolicy":
			s.RestartPolicy = corev1.RestartPolicy(d.str("spec.restartPolicy"))
		case "containers":
			s.Containers = nil
			if d.array("spec.containers") {
				for d.s.Next() {
					s.Containers = append(s.Containers, d.container())
				}
			}
		default:
			d.s.Skip()
		}
	}
}

func (d *decoder) container() (c corev1.Container) {
	if !d.object("a container") {
		return c
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "name":
			c.Name = d.str("containers.name")
		case "resources":
			if !d.object("containers.resources") {
				continue
			}
			for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
				switch string(key) {
				case "requests":
					c.Resources.Requests = d.resources("resources.requests")
				case "limits":
					c.Resources.Limits = d.resources("resources.limits")
				default:
					d.s.Skip()
				}
			}
		default:
			d.s.Skip()
		}
	}
	return c
}

// resources reads a ResourceList's cpu and memory; the others are skipped.
func (d *decoder) resources(what string) corev1.ResourceList {
	if !d.object(what) {
		return nil
	}
	l := corev1.ResourceList{}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		name := corev1.ResourceName(key)
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			d.s.Skip()
			continue
		}
		l[name] = d.quantity(what)
	}
	return l
}

// quantity reads a quantity as resource.Quantity's UnmarshalJSON does: a
// string or a number, null as zero.
func (d *decoder) quantity(what string) resource.Quantity {
	var text string
	switch k := d.s.Peek(); k {
	case jsonscan.Null:
		d.s.Null()
		return resource.Quantity{}
	case jsonscan.String:
		text = string(d.s.String())
	case jsonscan.Number:
		text = string(d.s.Number())
	case jsonscan.Invalid:
		d.s.Skip()
		return resource.Quantity{}
	default:
		d.fail(what+" is a "+k.String(), jsonscan.String)
		return resource.Quantity{}
	}
	q, err := resource.ParseQuantity(strings.TrimSpace(text))
	if err != nil {
		d.s.Fail(fmt.Errorf("%s: %q: %w", what, text, err))
	}
	return q
}

func (d *decoder) status(s *corev1.PodStatus) {
	if !d.object("status") {
		return
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "phase":
			s.Phase = corev1.PodPhase(d.str("status.phase"))
		case "containerStatuses":
			s.ContainerStatuses = nil
			if d.array("status.containerStatuses") {
				for d.s.Next() {
					s.ContainerStatuses = append(s.ContainerStatuses, d.containerStatus())
				}
			}
		default:
			d.s.Skip()
		}
	}
}

func (d *decoder) containerStatus() (c corev1.ContainerStatus) {
	if !d.object("a container status") {
		return c
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "name":
			c.Name = d.str("containerStatuses.name")
		case "restartCount":
			c.RestartCount = d.int32("containerStatuses.restartCount")
		case "state":
			c.State = d.state("containerStatuses.state")
		case "lastState":
			c.LastTerminationState = d.state("containerStatuses.lastState")
		default:
			d.s.Skip()
		}
	}
	return c
}

// state reads a ContainerState's waiting reason and termination.
func (d *decoder) state(what string) (st corev1.ContainerState) {
	if !d.object(what) {
		return st
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "waiting":
			st.Waiting = nil
			if d.object(what + ".waiting") {
				st.Waiting = &corev1.ContainerStateWaiting{}
				for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
					if string(key) == "reason" {
						st.Waiting.Reason = d.str(what + ".waiting.reason")
					} else {
						d.s.Skip()
					}
				}
			}
		case "terminated":
			st.Terminated = nil
			if d.object(what + ".terminated") {
				st.Terminated = d.terminated(what + ".terminated")
			}
		default:
			d.s.Skip()
		}
	}
	return st
}

func (d *decoder) terminated(what string) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "reason":
			t.Reason = d.str(what + ".reason")
		case "exitCode":
			t.ExitCode = d.int32(what + ".exitCode")
		case "containerID":
			t.ContainerID = d.str(what + ".containerID")
		case "startedAt":
			t.StartedAt = d.time(what + ".startedAt")
		case "finishedAt":
			t.FinishedAt = d.time(what + ".finishedAt")
		default:
			d.s.Skip()
		}
	}
	return t
}
