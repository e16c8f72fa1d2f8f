package podmeta

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

func TestDecodeList(t *testing.T) {
	const list = `{"kind":"PodList","items":[
 {"metadata":{"name":"web-7d4b9c-x1","namespace":"shop","uid":"u1","labels":{"app":"web","pod-template-hash":"7d4b9c"},
   "ownerReferences":[{"kind":"ReplicaSet","name":"web-7d4b9c","controller":true}]},
  "spec":{"nodeName":"n1","containers":[
   {"name":"app","resources":{"requests":{"cpu":"250m","memory":"128Mi"},"limits":{"cpu":"1","memory":"256Mi"}}},
   {"name":"sidecar"}]},
  "status":{"phase":"Running","containerStatuses":[{"name":"app","restartCount":3,
     "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s restarting failed container=app"}},
     "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","startedAt":"2026-05-01T10:00:00Z","finishedAt":"2026-05-01T10:00:07Z","containerID":"containerd://abc"}}},
    {"name":"sidecar","restartCount":0,"state":{"running":{"startedAt":"2026-05-01T09:00:00Z"}}}]}},
 {"metadata":{"name":"report-28391234-abcde","namespace":"batch",
   "ownerReferences":[{"kind":"Job","name":"report-28391234","controller":true}]},"spec":{"containers":[{"name":"r"}]}},
 {"metadata":{"name":"db-0","namespace":"shop","ownerReferences":[{"kind":"StatefulSet","name":"db","controller":true}]},"spec":{"containers":[{"name":"db"}]}},
 {"metadata":{"name":"once","namespace":"shop","ownerReferences":[{"kind":"Job","name":"migrate","controller":true}]},"spec":{"containers":[{"name":"m"}]}},
 {"metadata":{"name":"rs-no-hash","namespace":"shop","ownerReferences":[{"kind":"ReplicaSet","name":"plain","controller":true}]},"spec":{"containers":[{"name":"m"}]}},
 {"metadata":{"name":"bare","namespace":"shop"},"spec":{"containers":[{"name":"b"}]}}
]}`
	pods, err := DecodeList([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	owners := []struct{ kind, name string }{
		{"Deployment", "web"}, {"CronJob", "report"}, {"StatefulSet", "db"}, {"Job", "migrate"}, {"ReplicaSet", "plain"}, {"", ""},
	}
	for i, o := range owners {
		if pods[i].WorkloadKind != o.kind || pods[i].Workload != o.name {
			t.Errorf("%s: owner %s/%s, want %s/%s", pods[i].Name, pods[i].WorkloadKind, pods[i].Workload, o.kind, o.name)
		}
	}
	app, side := pods[0].Containers[0], pods[0].Containers[1]
	if app.CPURequest != 0.25 || app.CPULimit != 1 || app.MemoryRequest != 128<<20 || app.MemoryLimit != 256<<20 || app.Restarts != 3 {
		t.Errorf("app: %+v", app)
	}
	want := model.Termination{Reason: model.ReasonOOMKilled, ExitCode: 137, ContainerID: "containerd://abc",
		Started: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli(), Finished: time.Date(2026, 5, 1, 10, 0, 7, 0, time.UTC).UnixMilli()}
	if app.Waiting != model.ReasonCrashLoopBackOff || app.LastTermination != want {
		t.Errorf("app's state: waiting %q, last termination %+v, want %q, %+v", app.Waiting, app.LastTermination, model.ReasonCrashLoopBackOff, want)
	}
	if side.Waiting != "" || side.LastTermination != (model.Termination{}) {
		t.Errorf("a running container that never restarted: waiting %q, last termination %+v", side.Waiting, side.LastTermination)
	}
	if !math.IsNaN(side.CPURequest) || !math.IsNaN(side.MemoryLimit) {
		t.Errorf("sidecar without resources must have absent requests and limits: %+v", side)
	}
	if pods[0].Node != "n1" || pods[0].UID != "u1" || pods[0].Labels["app"] != "web" || pods[0].Phase != model.PhaseRunning || pods[1].Phase != "" {
		t.Errorf("meta: %+v", pods[0])
	}
	if _, err := DecodeList([]byte(`{"items":[`)); err == nil {
		t.Error("truncated list: want an error")
	}
}

// TestCrashLoopWhileTerminated: a container the kubelet holds back from
// restarting counts as waiting in CrashLoopBackOff whether the status says
// so or (as a v1.36 kubelet's does for most of the back-off, seen on the
// e2e cluster) shows it terminated after restarts.
func TestCrashLoopWhileTerminated(t *testing.T) {
	for _, tt := range []struct {
		name, policy, state string
		restarts            int
		want                string
	}{
		{"waiting in back-off", "Always", `{"waiting":{"reason":"CrashLoopBackOff"}}`, 3, model.ReasonCrashLoopBackOff},
		{"OOM-killed again, back-off", "Always", `{"terminated":{"exitCode":137,"reason":"OOMKilled"}}`, 2, model.ReasonCrashLoopBackOff},
		{"default policy", "", `{"terminated":{"exitCode":1,"reason":"Error"}}`, 1, model.ReasonCrashLoopBackOff},
		{"OnFailure, failed", "OnFailure", `{"terminated":{"exitCode":2,"reason":"Error"}}`, 1, model.ReasonCrashLoopBackOff},
		{"OnFailure, completed", "OnFailure", `{"terminated":{"exitCode":0,"reason":"Completed"}}`, 1, ""},
		{"Never restarts", "Never", `{"terminated":{"exitCode":137,"reason":"OOMKilled"}}`, 1, ""},
		{"first failure, restarted at once", "Always", `{"terminated":{"exitCode":137,"reason":"OOMKilled"}}`, 0, ""},
		{"running after restarts", "Always", `{"running":{"startedAt":"2026-11-30T07:14:21Z"}}`, 2, ""},
		{"pulling", "Always", `{"waiting":{"reason":"ImagePullBackOff"}}`, 0, "ImagePullBackOff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list := `{"items":[{"metadata":{"name":"p","namespace":"n"},"spec":{"restartPolicy":"` + tt.policy + `","containers":[{"name":"c"}]},
 "status":{"phase":"Running","containerStatuses":[{"name":"c","restartCount":` + strconv.Itoa(tt.restarts) + `,"state":` + tt.state + `}]}}]}`
			pods, err := DecodeList([]byte(list))
			if err != nil {
				t.Fatal(err)
			}
			if len(pods) != 1 || len(pods[0].Containers) != 1 {
				t.Fatalf("pods %+v", pods)
			}
			if got := pods[0].Containers[0].Waiting; got != tt.want {
				t.Errorf("waiting %q, want %q", got, tt.want)
			}
		})
	}
}
