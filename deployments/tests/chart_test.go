package deploytests

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// What the chart must implement, stated here independently of the chart's
// own wiring table (templates/_helpers.tpl) so that a slip in either shows.
const (
	release      = "merch-shop" // scripts/deploy-check.sh renders with this release name
	namespace    = "merch-shop" // ... in this namespace
	componentKey = "app.kubernetes.io/component"
)

var (
	services = []string{"gateway", "auth", "user", "coins", "merch", "info"}
	// Whom each service calls over gRPC.
	calls = map[string][]string{
		"gateway": {"auth", "user", "coins", "merch", "info"},
		"auth":    {"user", "coins"},
		"user":    {},
		"coins":   {},
		"merch":   {"coins", "user"},
		"info":    {"coins", "user"},
	}
	// Which infrastructure each uses (ydb: merch, only when switched on).
	uses = map[string][]string{
		"gateway": {"redis"},
		"auth":    {"postgres"},
		"user":    {"postgres", "redis"},
		"coins":   {"postgres", "kafka", "redis"},
		"merch":   {"postgres"},
		"info":    {"clickhouse", "kafka"},
	}
	grpcPort  = map[string]int32{"auth": 50051, "user": 50052, "coins": 50053, "merch": 50054, "info": 50055}
	adminPort = map[string]int32{"auth": 8081, "user": 8082, "coins": 8083, "merch": 8084, "info": 8085}
	infraPort = map[string]int32{"postgres": 5432, "redis": 6379, "kafka": 9092, "clickhouse": 9000}
	topics    = []string{"coins.transactions"}
	// The external endpoints' ports in testdata/values-external.yaml.
	externalPort = map[string]int32{"postgres": 5432, "redis": 6380, "kafka": 9094, "clickhouse": 9440, "ydb": 2135}
	// The Secrets the chart expects people to create (docs/deploy.md).
	documentedSecrets = []string{"merch-shop-postgres", "merch-shop-clickhouse", "merch-shop-auth-keys", "merch-shop-database-urls", "merch-shop-ydb"}
)

// The three renderings scripts/deploy-check.sh writes.
var renderings = []string{"default.yaml", "dev.yaml", "external.yaml"}

func isService(component string) bool { return slices.Contains(services, component) }

func fullName(component string) string { return release + "-" + component }

// workload is the pod-making part of a Deployment, StatefulSet, Job or Pod.
type workload struct {
	kind, name string
	labels     map[string]string // of the pods
	spec       *corev1.PodSpec
}

func (w workload) component() string { return w.labels[componentKey] }
func (w workload) String() string    { return w.kind + "/" + w.name }

func (r *rendering) workloads() []workload {
	var ws []workload
	for _, d := range sortedValues(r.deployments) {
		ws = append(ws, workload{"Deployment", d.Name, d.Spec.Template.Labels, &d.Spec.Template.Spec})
	}
	for _, s := range sortedValues(r.statefulSets) {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Spec.Template.Labels, &s.Spec.Template.Spec})
	}
	for _, j := range sortedValues(r.jobs) {
		ws = append(ws, workload{"Job", j.Name, j.Spec.Template.Labels, &j.Spec.Template.Spec})
	}
	for _, p := range sortedValues(r.pods) {
		ws = append(ws, workload{"Pod", p.Name, p.Labels, &p.Spec})
	}
	return ws
}

// longRunning reports Deployments and StatefulSets (not Jobs or test Pods).
func (w workload) longRunning() bool { return w.kind == "Deployment" || w.kind == "StatefulSet" }

func sortedValues[T any](m map[string]T) []T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(m))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// env returns a container's plain settings (env values and the ConfigMaps of
// envFrom) and the variables that come from elsewhere (valueFrom).
func (r *rendering) env(t *testing.T, c corev1.Container) (plain map[string]string, from map[string]*corev1.EnvVarSource) {
	t.Helper()
	plain, from = map[string]string{}, map[string]*corev1.EnvVarSource{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("container %s: envFrom other than a ConfigMap", c.Name)
			continue
		}
		cm, ok := r.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("container %s: envFrom ConfigMap %q is not rendered", c.Name, ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			plain[k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			from[e.Name] = e.ValueFrom
			delete(plain, e.Name)
		} else {
			plain[e.Name] = e.Value
		}
	}
	return plain, from
}

func (r *rendering) deploymentOf(t *testing.T, svc string) (workload, corev1.Container) {
	t.Helper()
	d, ok := r.deployments[fullName(svc)]
	if !ok {
		t.Fatalf("%s: no Deployment %s", r.name, fullName(svc))
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: Deployment %s has %d containers, want 1", r.name, d.Name, len(d.Spec.Template.Spec.Containers))
	}
	return workload{"Deployment", d.Name, d.Spec.Template.Labels, &d.Spec.Template.Spec}, d.Spec.Template.Spec.Containers[0]
}

// forEachRendering runs check as a subtest for each rendering.
func forEachRendering(t *testing.T, check func(t *testing.T, r *rendering)) {
	skipUnlessRendered(t)
	for _, file := range renderings {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			check(t, loadRendering(t, file))
		})
	}
}

func TestAllSixServicesAreDeployed(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		for _, svc := range services {
			w, _ := r.deploymentOf(t, svc)
			if w.component() != svc {
				t.Errorf("%s: pods labelled %s=%q", w, componentKey, w.component())
			}
			if _, ok := r.serviceAccounts[w.spec.ServiceAccountName]; !ok {
				t.Errorf("%s: ServiceAccount %q is not rendered", w, w.spec.ServiceAccountName)
			}
			if _, ok := r.services[fullName(svc)]; !ok {
				t.Errorf("no Service %s", fullName(svc))
			}
		}
	})
}

func TestWorkloadsAreHardened(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		ws := r.workloads()
		if len(ws) == 0 {
			t.Fatal("no workloads")
		}
		for _, w := range ws {
			pod := w.spec.SecurityContext
			if pod == nil {
				pod = &corev1.PodSecurityContext{}
			}
			if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service account token", w)
			}
			if pod.RunAsUser != nil && *pod.RunAsUser == 0 {
				t.Errorf("%s: pod runs as uid 0", w)
			}
			if len(w.spec.InitContainers) > 0 {
				t.Errorf("%s: has init containers; check them here before adding any", w)
			}
			for _, c := range w.spec.Containers {
				where := fmt.Sprintf("%s container %s", w, c.Name)
				sc := c.SecurityContext
				if sc == nil {
					t.Errorf("%s: no securityContext", where)
					continue
				}
				if !isTrue(sc.RunAsNonRoot) && !isTrue(pod.RunAsNonRoot) {
					t.Errorf("%s: runAsNonRoot is not set", where)
				}
				if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
					t.Errorf("%s: runs as uid 0", where)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s: allowPrivilegeEscalation is not false", where)
				}
				if isTrue(sc.Privileged) {
					t.Errorf("%s: privileged", where)
				}
				if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
					t.Errorf("%s: capabilities must drop ALL and add none", where)
				}
				seccomp := sc.SeccompProfile
				if seccomp == nil {
					seccomp = pod.SeccompProfile
				}
				if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("%s: seccomp profile is not RuntimeDefault", where)
				}
				if isService(w.component()) && !isTrue(sc.ReadOnlyRootFilesystem) {
					t.Errorf("%s: root filesystem is writable", where)
				}
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Requests[res]; !ok {
						t.Errorf("%s: no %s request", where, res)
					}
					if _, ok := c.Resources.Limits[res]; !ok {
						t.Errorf("%s: no %s limit", where, res)
					}
				}
				if req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory(); req.Cmp(*lim) > 0 {
					t.Errorf("%s: memory request %s above limit %s", where, req, lim)
				}
				if w.longRunning() {
					if c.LivenessProbe == nil || c.ReadinessProbe == nil {
						t.Errorf("%s: needs both liveness and readiness probes", where)
					}
				}
				checkImagePinned(t, where, c.Image)
			}
		}
	})
}

func isTrue(b *bool) bool { return b != nil && *b }

var imageRef = regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9_.-]+)?(@sha256:[a-f0-9]{64})?$`)

func checkImagePinned(t *testing.T, where, image string) {
	t.Helper()
	if !imageRef.MatchString(image) {
		t.Errorf("%s: malformed image %q", where, image)
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	// The tag is after the last colon that follows the last slash.
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		t.Errorf("%s: image %q has no tag (it would mean :latest)", where, image)
		return
	}
	if tag := name[i+1:]; tag == "latest" || tag == "" {
		t.Errorf("%s: image %q is not pinned", where, image)
	}
}

func TestProbesMatchTheServices(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		for _, svc := range services {
			_, c := r.deploymentOf(t, svc)
			if c.StartupProbe == nil {
				t.Errorf("%s: no startup probe", svc)
			}
			if svc == "gateway" {
				for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
					want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
					if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "http" {
						t.Errorf("gateway %s probe: want httpGet %s on port http, got %+v", name, want, p)
					}
				}
				if !hasPort(c, "http", 8080) {
					t.Errorf("gateway: no container port http 8080")
				}
				continue
			}
			for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil || p.GRPC == nil || p.GRPC.Port != grpcPort[svc] {
					t.Errorf("%s %s probe: want gRPC health on %d, got %+v", svc, name, grpcPort[svc], p)
				}
			}
			if !hasPort(c, "grpc", grpcPort[svc]) || !hasPort(c, "admin", adminPort[svc]) {
				t.Errorf("%s: container ports %+v, want grpc %d and admin %d", svc, c.Ports, grpcPort[svc], adminPort[svc])
			}
			plain, _ := r.env(t, c)
			if plain["GRPC_ADDR"] != fmt.Sprintf(":%d", grpcPort[svc]) || plain["ADMIN_ADDR"] != fmt.Sprintf(":%d", adminPort[svc]) {
				t.Errorf("%s: GRPC_ADDR=%q ADMIN_ADDR=%q do not listen on the probed ports", svc, plain["GRPC_ADDR"], plain["ADMIN_ADDR"])
			}
		}
		_, gw := r.deploymentOf(t, "gateway")
		if plain, _ := r.env(t, gw); plain["HTTP_ADDR"] != ":8080" {
			t.Errorf("gateway: HTTP_ADDR=%q, want :8080", plain["HTTP_ADDR"])
		}
	})
}

func hasPort(c corev1.Container, name string, port int32) bool {
	for _, p := range c.Ports {
		if p.Name == name && p.ContainerPort == port {
			return true
		}
	}
	return false
}

func TestServicesSelectPods(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		ws := r.workloads()
		for _, s := range sortedValues(r.services) {
			if len(s.Spec.Selector) == 0 {
				t.Errorf("Service %s: no selector", s.Name)
				continue
			}
			sel := labels.SelectorFromSet(s.Spec.Selector)
			var matched []workload
			for _, w := range ws {
				if w.longRunning() && sel.Matches(labels.Set(w.labels)) {
					matched = append(matched, w)
				}
			}
			if len(matched) != 1 {
				t.Errorf("Service %s: selector %v matches %d workloads %v, want exactly 1", s.Name, s.Spec.Selector, len(matched), matched)
				continue
			}
			for _, p := range s.Spec.Ports {
				if !targetExists(matched[0], p) {
					t.Errorf("Service %s port %s: target %s is not a port of %s", s.Name, p.Name, p.TargetPort.String(), matched[0])
				}
			}
		}
	})
}

func targetExists(w workload, p corev1.ServicePort) bool {
	for _, c := range w.spec.Containers {
		for _, cp := range c.Ports {
			if (p.TargetPort.String() == cp.Name) || (p.TargetPort.IntValue() == int(cp.ContainerPort)) {
				return true
			}
		}
	}
	return false
}

// The addresses in the services' settings name Services (and ports) that exist.
func TestAddressesResolve(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		suffix := "." + namespace + ".svc.cluster.local"
		for _, svc := range services {
			_, c := r.deploymentOf(t, svc)
			plain, _ := r.env(t, c)
			for _, callee := range calls[svc] {
				key := strings.ToUpper(callee) + "_TARGET"
				want := fmt.Sprintf("dns:///%s%s:%d", fullName(callee), suffix, grpcPort[callee])
				if plain[key] != want {
					t.Errorf("%s: %s=%q, want %q", svc, key, plain[key], want)
				}
				if s, ok := r.services[fullName(callee)]; !ok || s.Spec.ClusterIP != corev1.ClusterIPNone {
					t.Errorf("%s: %s must be a headless Service (client-side round robin)", svc, fullName(callee))
				}
			}
			for k := range plain {
				if strings.HasSuffix(k, "_TARGET") && !slices.Contains(calls[svc], strings.ToLower(strings.TrimSuffix(k, "_TARGET"))) {
					t.Errorf("%s: has %s but does not call it", svc, k)
				}
			}
			for _, part := range uses[svc] {
				var addrs []string
				switch part {
				case "kafka":
					addrs = strings.Split(plain["KAFKA_BROKERS"], ",")
				case "redis":
					addrs = []string{plain["REDIS_ADDR"]}
				case "clickhouse":
					addrs = []string{plain["CLICKHOUSE_ADDR"]}
				default:
					continue // postgres: see TestNoSecretValues
				}
				for _, a := range addrs {
					if a == "" {
						t.Errorf("%s: no address for %s", svc, part)
						continue
					}
					if _, bundled := r.statefulSets[fullName(part)]; bundled {
						r.checkBundledAddress(t, svc, part, a, suffix)
					}
				}
			}
		}
	})
}

// checkBundledAddress: host.ns.svc.cluster.local:port of a rendered Service
// (or pod-N.<headless> of the StatefulSet) with the part's port.
func (r *rendering) checkBundledAddress(t *testing.T, svc, part, addr, suffix string) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok || port != strconv.Itoa(int(infraPort[part])) || !strings.HasSuffix(host, suffix) {
		t.Errorf("%s: %s address %q", svc, part, addr)
		return
	}
	name := strings.TrimSuffix(host, suffix)
	if pod, service, isPod := strings.Cut(name, "."); isPod {
		sts := r.statefulSets[fullName(part)]
		ord, err := strconv.Atoi(strings.TrimPrefix(pod, sts.Name+"-"))
		if err != nil || ord < 0 || ord >= int(*sts.Spec.Replicas) || service != sts.Spec.ServiceName {
			t.Errorf("%s: %s address %q is not a pod of %s", svc, part, addr, sts.Name)
		}
		return
	}
	if _, ok := r.services[name]; !ok {
		t.Errorf("%s: %s address %q: no Service %s", svc, part, addr, name)
	}
}

// Secrets: none with values in a production rendering; the services get
// passwords and keys by reference only.
func TestNoSecretValues(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		generated := r.name == "dev.yaml"
		if !generated && len(r.secrets) > 0 {
			t.Errorf("the rendering holds Secrets %v: values must come from existing Secrets", keys(r.secrets))
		}
		for _, w := range r.workloads() {
			for _, c := range w.spec.Containers {
				plain, from := r.env(t, c)
				for k, v := range plain {
					if looksSecret(k) && v != "" {
						t.Errorf("%s %s: %s has a literal value", w, c.Name, k)
					}
					if k == "DATABASE_URL" && !strings.Contains(v, ":$(DATABASE_PASSWORD)@") {
						t.Errorf("%s: DATABASE_URL %q does not take its password from the Secret", w, v)
					}
				}
				for k, src := range from {
					if src.SecretKeyRef == nil {
						continue
					}
					name := src.SecretKeyRef.Name
					if generated {
						if s, ok := r.secrets[name]; !ok || len(s.Data[src.SecretKeyRef.Key]) == 0 {
							t.Errorf("%s: %s refers to %s/%s, which is not generated", w, k, name, src.SecretKeyRef.Key)
						}
					} else if !slices.Contains(documentedSecrets, name) {
						t.Errorf("%s: %s refers to Secret %q, which docs/deploy.md does not tell to create", w, k, name)
					}
				}
				if isService(w.component()) && slices.Contains(uses[w.component()], "postgres") {
					if _, ok := plain["DATABASE_URL"]; !ok && from["DATABASE_URL"] == nil {
						t.Errorf("%s: no DATABASE_URL", w)
					}
				}
			}
			for _, v := range w.spec.Volumes {
				if v.Secret != nil && !generated && !slices.Contains(documentedSecrets, v.Secret.SecretName) {
					t.Errorf("%s: mounts Secret %q, which docs/deploy.md does not tell to create", w, v.Secret.SecretName)
				}
			}
		}
		for _, cm := range r.configMaps {
			for k, v := range cm.Data {
				if looksSecret(k) && v != "" {
					t.Errorf("ConfigMap %s: %s has a value", cm.Name, k)
				}
			}
		}
		if generated {
			checkGeneratedSecrets(t, r)
		}
	})
}

func keys[T any](m map[string]T) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// looksSecret: names of settings that hold secrets. *_FILE names a path.
func looksSecret(name string) bool {
	if strings.HasSuffix(name, "_FILE") || strings.HasSuffix(name, "_FILES") {
		return false
	}
	for _, w := range []string{"PASSWORD", "SECRET", "TOKEN", "PRIVATE", "CREDENTIAL"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

var urlSafe = regexp.MustCompile(`^[A-Za-z0-9]{24,}$`)

func checkGeneratedSecrets(t *testing.T, r *rendering) {
	for _, name := range []string{"merch-shop-postgres", "merch-shop-clickhouse"} {
		s, ok := r.secrets[name]
		if !ok {
			t.Errorf("secrets.generate: no Secret %s", name)
			continue
		}
		if !urlSafe.Match(s.Data["password"]) {
			t.Errorf("Secret %s: generated password is not a long URL-safe string", name)
		}
		if s.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("Secret %s: must survive helm uninstall (the volume keeps its password)", name)
		}
	}
	s, ok := r.secrets["merch-shop-auth-keys"]
	if !ok {
		t.Fatal("secrets.generate: no Secret merch-shop-auth-keys")
	}
	block, _ := pem.Decode(s.Data["signing.pem"])
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("generated signing key is not a PEM PRIVATE KEY")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("generated signing key: %v", err)
	}
	if _, ok := key.(ed25519.PrivateKey); !ok {
		t.Fatalf("generated signing key is a %T, want Ed25519", key)
	}
}

func TestAuthMountsTheSigningKey(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		w, c := r.deploymentOf(t, "auth")
		plain, _ := r.env(t, c)
		file := plain["AUTH_SIGNING_KEY_FILE"]
		var mounted bool
		for _, m := range c.VolumeMounts {
			for _, v := range w.spec.Volumes {
				if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "merch-shop-auth-keys" && m.ReadOnly && strings.HasPrefix(file, m.MountPath+"/") {
					mounted = true
				}
			}
		}
		if !mounted {
			t.Errorf("auth: AUTH_SIGNING_KEY_FILE=%q is not inside a read-only mount of Secret merch-shop-auth-keys", file)
		}
	})
}

func TestAutoscalingAndDisruptionBudgets(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		for _, svc := range services {
			name := fullName(svc)
			w, _ := r.deploymentOf(t, svc)
			d := r.deployments[name]
			hpa, hasHPA := r.hpas[name]
			switch {
			case r.name == "dev.yaml":
				if hasHPA || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
					t.Errorf("%s: dev wants 1 replica and no HPA", svc)
				}
			case !hasHPA:
				t.Errorf("%s: no HorizontalPodAutoscaler", svc)
			default:
				ref := hpa.Spec.ScaleTargetRef
				if ref.Kind != "Deployment" || ref.Name != name || ref.APIVersion != "apps/v1" {
					t.Errorf("%s: HPA targets %+v", svc, ref)
				}
				if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
					t.Errorf("%s: HPA replicas min %v max %d", svc, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
				}
				if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
					t.Errorf("%s: HPA has no CPU metric", svc)
				}
				if d.Spec.Replicas != nil {
					t.Errorf("%s: Deployment sets replicas although the HPA owns them", svc)
				}
			}
			pdb, ok := r.pdbs[name]
			if !ok {
				t.Errorf("%s: no PodDisruptionBudget", svc)
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(w.labels)) {
				t.Errorf("%s: PDB does not select its pods", svc)
			}
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
				t.Errorf("%s: PDB must let at least one pod go (maxUnavailable >= 1), or drains block", svc)
			}
		}
	})
}

func TestKafkaQuorumAndTopics(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		job, ok := r.jobs[fullName("kafka-topics")]
		if !ok {
			t.Fatal("no kafka-topics Job")
		}
		if hook := job.Annotations["helm.sh/hook"]; hook != "post-install,post-upgrade" {
			t.Errorf("kafka-topics Job: helm.sh/hook=%q", hook)
		}
		jobEnv, _ := r.env(t, job.Spec.Template.Spec.Containers[0])
		if got := strings.Fields(jobEnv["TOPICS"]); !slices.Equal(got, topics) {
			t.Errorf("topics %v, want %v", got, topics)
		}
		if jobEnv["PARTITIONS"] != "6" {
			t.Errorf("partitions %q, want 6", jobEnv["PARTITIONS"])
		}
		sts, bundled := r.statefulSets[fullName("kafka")]
		if r.name == "external.yaml" {
			if bundled {
				t.Error("kafka.enabled=false still renders Kafka")
			}
			return
		}
		if !bundled {
			t.Fatal("no Kafka StatefulSet")
		}
		want := map[string]int32{"default.yaml": 3, "dev.yaml": 1}[r.name]
		if *sts.Spec.Replicas != want {
			t.Errorf("Kafka nodes %d, want %d", *sts.Spec.Replicas, want)
		}
		if jobEnv["REPLICATION"] != strconv.Itoa(int(want)) {
			t.Errorf("topic replication %q, want %d", jobEnv["REPLICATION"], want)
		}
		env, _ := r.env(t, sts.Spec.Template.Spec.Containers[0])
		if env["KAFKA_PROCESS_ROLES"] != "broker,controller" {
			t.Errorf("KAFKA_PROCESS_ROLES=%q", env["KAFKA_PROCESS_ROLES"])
		}
		voters := strings.Split(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], ",")
		if len(voters) != int(want) {
			t.Errorf("controller quorum %v, want %d voters", voters, want)
		}
		for i, v := range voters {
			if !strings.HasPrefix(v, fmt.Sprintf("%d@%s-%d.", i, sts.Name, i)) || !strings.HasSuffix(v, ":9093") {
				t.Errorf("voter %d is %q", i, v)
			}
		}
		for k := range env {
			if strings.Contains(strings.ToUpper(k), "ZOOKEEPER") {
				t.Errorf("%s: KRaft needs no ZooKeeper", k)
			}
		}
		if sts.Spec.PodManagementPolicy != "Parallel" {
			t.Error("Kafka pods must start in parallel to form the quorum")
		}
		if _, ok := r.pdbs[fullName("kafka")]; !ok {
			t.Error("no PDB for Kafka")
		}
	})
}

func TestIngressRoutesToTheGateway(t *testing.T) {
	r := loadRendering(t, "default.yaml")
	ing, ok := r.ingresses[fullName("gateway")]
	if !ok {
		t.Fatal("no Ingress for the gateway")
	}
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			b := p.Backend.Service
			if b == nil || b.Name != fullName("gateway") || b.Port.Name != "http" {
				t.Errorf("Ingress path %s goes to %+v", p.Path, b)
			}
		}
	}
	if len(ing.Spec.Rules) == 0 {
		t.Error("Ingress without rules")
	}
	if len(loadRendering(t, "dev.yaml").ingresses) != 0 {
		t.Error("dev renders an Ingress")
	}
}

func TestExternalInfrastructure(t *testing.T) {
	r := loadRendering(t, "external.yaml")
	for _, part := range []string{"postgres", "redis", "kafka", "clickhouse"} {
		if _, ok := r.statefulSets[fullName(part)]; ok {
			t.Errorf("%s.enabled=false still renders its StatefulSet", part)
		}
	}
	_, merch := r.deploymentOf(t, "merch")
	plain, from := r.env(t, merch)
	if plain["MERCH_STORE"] != "ydb" || plain["YDB_ENDPOINT"] == "" || plain["YDB_DATABASE"] == "" {
		t.Errorf("ydb.enabled: merch settings %v", plain)
	}
	if from["YDB_ACCESS_TOKEN_CREDENTIALS"] == nil {
		t.Error("ydb.tokenSecret: no YDB_ACCESS_TOKEN_CREDENTIALS from the Secret")
	}
	for _, svc := range []string{"auth", "user", "coins", "merch"} {
		_, c := r.deploymentOf(t, svc)
		_, from := r.env(t, c)
		ref := from["DATABASE_URL"]
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "merch-shop-database-urls" || ref.SecretKeyRef.Key != svc {
			t.Errorf("%s: DATABASE_URL should come from merch-shop-database-urls/%s, got %+v", svc, svc, ref)
		}
	}
}

// ---- NetworkPolicies ----

// allowed sums up what a set of policies lets a pod do: per peer component,
// the ports; "*" stands for peers outside the release (any address, other
// namespaces, ipBlocks).
type allowed map[string][]int32

func (a allowed) add(peer string, ports []networkingv1.NetworkPolicyPort) {
	if len(ports) == 0 {
		a[peer] = append(a[peer], 0) // 0: every port
	}
	for _, p := range ports {
		if p.Port != nil {
			a[peer] = append(a[peer], int32(p.Port.IntValue()))
		}
	}
}

func peerName(p networkingv1.NetworkPolicyPeer) string {
	if p.NamespaceSelector != nil || p.IPBlock != nil || p.PodSelector == nil {
		return "*"
	}
	if c, ok := p.PodSelector.MatchLabels[componentKey]; ok && len(p.PodSelector.MatchExpressions) == 0 {
		return c
	}
	return "?"
}

func policiesFor(r *rendering, podLabels map[string]string) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, p := range sortedValues(r.policies) {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err == nil && sel.Matches(labels.Set(podLabels)) {
			out = append(out, p)
		}
	}
	return out
}

// traffic returns what the policies of a pod's own component allow in and
// out. The release-wide ones (default deny, DNS) are checked on their own.
func traffic(r *rendering, podLabels map[string]string) (in, out allowed) {
	in, out = allowed{}, allowed{}
	for _, p := range policiesFor(r, podLabels) {
		if p.Spec.PodSelector.MatchLabels[componentKey] == "" {
			continue
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.From) == 0 {
				in.add("*", rule.Ports)
			}
			for _, peer := range rule.From {
				in.add(peerName(peer), rule.Ports)
			}
		}
		for _, rule := range p.Spec.Egress {
			if len(rule.To) == 0 {
				out.add("*", rule.Ports)
			}
			for _, peer := range rule.To {
				out.add(peerName(peer), rule.Ports)
			}
		}
	}
	return in, out
}

func TestNetworkPolicies(t *testing.T) {
	forEachRendering(t, func(t *testing.T, r *rendering) {
		var deny, dns *networkingv1.NetworkPolicy
		for _, p := range r.policies {
			types := p.Spec.PolicyTypes
			switch {
			case len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 &&
				slices.Contains(types, networkingv1.PolicyTypeIngress) && slices.Contains(types, networkingv1.PolicyTypeEgress) &&
				p.Spec.PodSelector.MatchLabels[componentKey] == "":
				deny = p
			case len(p.Spec.Egress) == 1 && len(p.Spec.Ingress) == 0 && p.Spec.PodSelector.MatchLabels[componentKey] == "":
				dns = p
			}
		}
		if deny == nil {
			t.Fatal("no default-deny NetworkPolicy (all release pods, Ingress and Egress, no rules)")
		}
		denySel, _ := metav1.LabelSelectorAsSelector(&deny.Spec.PodSelector)
		for _, w := range r.workloads() {
			if !denySel.Matches(labels.Set(w.labels)) {
				t.Errorf("%s: not covered by the default deny", w)
			}
			own := 0
			for _, p := range policiesFor(r, w.labels) {
				if p.Spec.PodSelector.MatchLabels[componentKey] == w.component() {
					own++
				}
			}
			if own == 0 {
				t.Errorf("%s: no NetworkPolicy of its own", w)
			}
		}
		if dns == nil {
			t.Fatal("no NetworkPolicy allowing DNS")
		}
		for _, port := range dns.Spec.Egress[0].Ports {
			if port.Port.IntValue() != 53 {
				t.Errorf("DNS policy opens port %s", port.Port)
			}
		}

		// The six services: callers in, callees and infrastructure out.
		for _, svc := range services {
			w, _ := r.deploymentOf(t, svc)
			in, out := traffic(r, w.labels)
			wantIn := allowed{}
			if svc == "gateway" {
				for peer := range in {
					if !slices.Equal(in[peer], []int32{8080}) {
						t.Errorf("gateway: ingress from %s on %v, want 8080 only", peer, in[peer])
					}
				}
				if len(in) == 0 {
					t.Error("gateway: no ingress at all")
				}
			} else {
				for caller, cs := range calls {
					if slices.Contains(cs, svc) {
						wantIn[caller] = []int32{grpcPort[svc]}
					}
				}
				if metrics, ok := in["*"]; ok {
					// networkPolicy.metricsFrom: admin port only.
					if !slices.Equal(metrics, []int32{adminPort[svc]}) {
						t.Errorf("%s: ingress from outside the release on %v", svc, metrics)
					}
					delete(in, "*")
				}
				checkAllowed(t, svc+" ingress", in, wantIn)
			}
			wantOut := allowed{}
			for _, callee := range calls[svc] {
				wantOut[callee] = []int32{grpcPort[callee]}
			}
			parts := uses[svc]
			if svc == "merch" && r.name == "external.yaml" {
				parts = append(slices.Clone(parts), "ydb")
			}
			for _, part := range parts {
				if _, bundled := r.statefulSets[fullName(part)]; bundled {
					wantOut[part] = []int32{infraPort[part]}
				} else {
					// Outside the release: that endpoint's port only.
					wantOut["*"] = append(wantOut["*"], externalPort[part])
				}
			}
			checkAllowed(t, svc+" egress", out, wantOut)
		}

		// The bundled infrastructure: from its users only.
		for _, part := range []string{"postgres", "redis", "kafka", "clickhouse"} {
			sts, ok := r.statefulSets[fullName(part)]
			if !ok {
				continue
			}
			in, _ := traffic(r, sts.Spec.Template.Labels)
			want := allowed{}
			for svc, us := range uses {
				if slices.Contains(us, part) {
					want[svc] = []int32{infraPort[part]}
				}
			}
			if part == "kafka" {
				want["kafka-topics"] = []int32{9092}
				want["kafka"] = []int32{9092, 9093}
			}
			checkAllowed(t, part+" ingress", in, want)
		}
	})
}

func checkAllowed(t *testing.T, what string, got, want allowed) {
	t.Helper()
	norm := func(a allowed) string {
		var parts []string
		for _, k := range keys(a) {
			ports := slices.Clone(a[k])
			slices.Sort(ports)
			parts = append(parts, fmt.Sprintf("%s:%v", k, slices.Compact(ports)))
		}
		return strings.Join(parts, " ")
	}
	if norm(got) != norm(want) {
		t.Errorf("%s allows\n  %s\nwant\n  %s", what, norm(got), norm(want))
	}
}
