package deploytests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// renderedDirEnv names the directory with the chart rendered by
// scripts/deploy-check.sh: default.yaml (values.yaml), dev.yaml
// (values-dev.yaml) and external.yaml (testdata/values-external.yaml).
const renderedDirEnv = "MERCH_RENDERED_DIR"

// The kinds the chart may render, each with its API type. Anything else is
// an error: a new kind must be added here, and so be checked.
var apiTypes = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Pod":                                 func() any { return &corev1.Pod{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                           func() any { return &batchv1.Job{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/Ingress":           func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
}

// rendering is one rendered chart, decoded.
type rendering struct {
	name    string
	objects []any

	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	services        map[string]*corev1.Service
	serviceAccounts map[string]*corev1.ServiceAccount
	deployments     map[string]*appsv1.Deployment
	statefulSets    map[string]*appsv1.StatefulSet
	jobs            map[string]*batchv1.Job
	pods            map[string]*corev1.Pod
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs            map[string]*policyv1.PodDisruptionBudget
	ingresses       map[string]*networkingv1.Ingress
	policies        map[string]*networkingv1.NetworkPolicy
}

// splitDocuments splits a multi-document YAML stream, dropping documents
// that hold nothing but comments.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if len(probe) > 0 {
			docs = append(docs, doc)
		}
	}
}

// decodeStrict decodes one document into its API type: unknown fields,
// duplicate keys, wrong types and unknown kinds are errors.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	key := tm.APIVersion + "/" + tm.Kind
	newObj, ok := apiTypes[key]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q (add it to apiTypes and to the checks)", key)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return obj, nil
}

// sourceOf returns the "# Source: ..." line helm puts above a document.
func sourceOf(doc []byte) string {
	for _, line := range strings.Split(string(doc), "\n") {
		if s, ok := strings.CutPrefix(line, "# Source: "); ok {
			return s
		}
	}
	return "?"
}

func parseRendering(name string, data []byte) (*rendering, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	r := &rendering{
		name:            name,
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		services:        map[string]*corev1.Service{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		deployments:     map[string]*appsv1.Deployment{},
		statefulSets:    map[string]*appsv1.StatefulSet{},
		jobs:            map[string]*batchv1.Job{},
		pods:            map[string]*corev1.Pod{},
		hpas:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		ingresses:       map[string]*networkingv1.Ingress{},
		policies:        map[string]*networkingv1.NetworkPolicy{},
	}
	var errs []error
	for _, doc := range docs {
		obj, err := decodeStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sourceOf(doc), err))
			continue
		}
		if err := r.add(obj); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sourceOf(doc), err))
		}
	}
	return r, errors.Join(errs...)
}

// add indexes an object by name, refusing two objects of a kind with one name.
func (r *rendering) add(obj any) error {
	r.objects = append(r.objects, obj)
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return index(r.configMaps, o.Name, o)
	case *corev1.Secret:
		return index(r.secrets, o.Name, o)
	case *corev1.Service:
		return index(r.services, o.Name, o)
	case *corev1.ServiceAccount:
		return index(r.serviceAccounts, o.Name, o)
	case *corev1.Pod:
		return index(r.pods, o.Name, o)
	case *appsv1.Deployment:
		return index(r.deployments, o.Name, o)
	case *appsv1.StatefulSet:
		return index(r.statefulSets, o.Name, o)
	case *batchv1.Job:
		return index(r.jobs, o.Name, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return index(r.hpas, o.Name, o)
	case *policyv1.PodDisruptionBudget:
		return index(r.pdbs, o.Name, o)
	case *networkingv1.Ingress:
		return index(r.ingresses, o.Name, o)
	case *networkingv1.NetworkPolicy:
		return index(r.policies, o.Name, o)
	default:
		return fmt.Errorf("no index for %T", obj)
	}
}

func index[T any](m map[string]T, name string, obj T) error {
	if name == "" {
		return fmt.Errorf("%T without a name", obj)
	}
	if _, ok := m[name]; ok {
		return fmt.Errorf("two %T named %q", obj, name)
	}
	m[name] = obj
	return nil
}

// loadRendering reads $MERCH_RENDERED_DIR/<file>, or skips the test when the
// variable is unset (plain `go test ./...`).
func loadRendering(t *testing.T, file string) *rendering {
	t.Helper()
	skipUnlessRendered(t)
	path := filepath.Join(os.Getenv(renderedDirEnv), file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("rendered chart: %v", err)
	}
	r, err := parseRendering(file, data)
	if err != nil {
		t.Fatalf("%s does not decode strictly:\n%v", path, err)
	}
	if len(r.objects) == 0 {
		t.Fatalf("%s holds no objects", path)
	}
	return r
}

func skipUnlessRendered(t *testing.T) {
	t.Helper()
	if os.Getenv(renderedDirEnv) == "" {
		t.Skipf("%s is not set, so the Helm chart was not rendered: run scripts/deploy-check.sh (it renders the chart with helm and runs these tests)", renderedDirEnv)
	}
}

// The decoder must reject what the API server would reject or silently drop.
func TestDecodeIsStrict(t *testing.T) {
	good := `
apiVersion: v1
kind: Service
metadata:
  name: x
spec:
  selector: {app: x}
  ports: [{port: 80}]
`
	if _, err := decodeStrict([]byte(good)); err != nil {
		t.Fatalf("a valid Service fails: %v", err)
	}
	bad := map[string]string{
		"unknown field": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          image: x:1
          livenessProbe:
            httpGett: {path: /healthz, port: 8080}
`,
		"wrong type": `
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  ports: [{port: "eighty"}]
`,
		"duplicate key": `
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {A: "1", A: "2"}
`,
		"unknown kind": `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
`,
		"bad quantity": `
apiVersion: v1
kind: Pod
metadata: {name: x}
spec:
  containers:
    - name: x
      image: x:1
      resources: {limits: {memory: 12 gigs}}
`,
	}
	for name, doc := range bad {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestSplitDocuments(t *testing.T) {
	stream := "---\n# Source: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
	docs, err := splitDocuments([]byte(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	if _, err := parseRendering("x", []byte(stream+"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")); err == nil {
		t.Fatal("two ConfigMaps named a must be an error")
	}
}
