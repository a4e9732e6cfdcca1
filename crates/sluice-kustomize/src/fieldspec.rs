//! Field specs (which fields of which kinds a transformer touches) and the
//! built-in transformer configuration (kustomize's defaults).

use crate::resource::Gvk;
use crate::yaml::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

impl FieldSpec {
    pub fn new(kind: &str, group: &str, version: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk: Gvk {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            },
            path: path.into(),
            create,
        }
    }
    pub fn any(path: &str, create: bool) -> FieldSpec {
        FieldSpec::new("", "", "", path, create)
    }
    /// Parses a field spec from a configuration map
    /// (`{group, version, kind, path, create}`).
    pub fn from_value(v: &Value) -> Result<FieldSpec, String> {
        let m = v
            .as_map()
            .ok_or_else(|| format!("field spec must be a mapping, got {}", v.kind_name()))?;
        let s = |k: &str| m.get(k).and_then(Value::scalar_string).unwrap_or_default();
        Ok(FieldSpec {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            path: s("path"),
            create: matches!(m.get("create"), Some(Value::Bool(true))),
        })
    }
}

/// A name-reference back reference: resources of `gvk` are referred to by
/// the fields in `referrers`.
#[derive(Clone, Debug, Default)]
pub struct NameBackRef {
    pub gvk: Gvk,
    pub referrers: Vec<FieldSpec>,
}

/// The transformer configuration (kustomize's `TransformerConfig`).
#[derive(Clone, Debug, Default)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    /// Extra fields for every `labels:` entry (`labels:` in configurations).
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

fn add_unique(dst: &mut Vec<FieldSpec>, src: &[FieldSpec]) {
    for fs in src {
        if !dst.iter().any(|d| d.gvk == fs.gvk && d.path == fs.path) {
            dst.push(fs.clone());
        }
    }
}

impl TransformerConfig {
    pub fn merge(&mut self, o: &TransformerConfig) {
        add_unique(&mut self.name_prefix, &o.name_prefix);
        add_unique(&mut self.name_suffix, &o.name_suffix);
        add_unique(&mut self.namespace, &o.namespace);
        add_unique(&mut self.common_labels, &o.common_labels);
        add_unique(&mut self.template_labels, &o.template_labels);
        add_unique(&mut self.labels, &o.labels);
        add_unique(&mut self.common_annotations, &o.common_annotations);
        add_unique(&mut self.var_reference, &o.var_reference);
        add_unique(&mut self.images, &o.images);
        add_unique(&mut self.replicas, &o.replicas);
        for br in &o.name_reference {
            match self.name_reference.iter_mut().find(|x| x.gvk == br.gvk) {
                Some(x) => add_unique(&mut x.referrers, &br.referrers),
                None => self.name_reference.push(br.clone()),
            }
        }
    }

    /// Parses a `configurations:` file.
    pub fn from_value(v: &Value) -> Result<TransformerConfig, String> {
        let mut tc = TransformerConfig::default();
        let Some(m) = v.as_map() else { return Ok(tc) };
        let list = |m: &Map, k: &str| -> Result<Vec<FieldSpec>, String> {
            match m.get(k) {
                Some(Value::Seq(items)) => items.iter().map(FieldSpec::from_value).collect(),
                _ => Ok(Vec::new()),
            }
        };
        tc.name_prefix = list(m, "namePrefix")?;
        tc.name_suffix = list(m, "nameSuffix")?;
        tc.namespace = list(m, "namespace")?;
        tc.common_labels = list(m, "commonLabels")?;
        tc.template_labels = list(m, "templateLabels")?;
        tc.labels = list(m, "labels")?;
        tc.common_annotations = list(m, "commonAnnotations")?;
        tc.var_reference = list(m, "varReference")?;
        tc.images = list(m, "images")?;
        tc.replicas = list(m, "replicas")?;
        if let Some(Value::Seq(items)) = m.get("nameReference") {
            for it in items {
                let Some(im) = it.as_map() else { continue };
                let s = |k: &str| im.get(k).and_then(Value::scalar_string).unwrap_or_default();
                let referrers = list(im, "fieldSpecs")?;
                tc.name_reference.push(NameBackRef {
                    gvk: Gvk {
                        group: s("group"),
                        version: s("version"),
                        kind: s("kind"),
                    },
                    referrers,
                });
            }
        }
        Ok(tc)
    }

    /// kustomize's built-in defaults.
    pub fn defaults() -> TransformerConfig {
        let mut tc = TransformerConfig {
            name_prefix: vec![FieldSpec::any("metadata/name", false)],
            name_suffix: vec![FieldSpec::any("metadata/name", false)],
            ..Default::default()
        };
        tc.namespace = vec![
            FieldSpec::any("metadata/namespace", true),
            FieldSpec::new("Namespace", "", "", "metadata/name", true),
            FieldSpec::new("RoleBinding", "", "", "subjects/namespace", false),
            FieldSpec::new("ClusterRoleBinding", "", "", "subjects/namespace", false),
            FieldSpec::new(
                "APIService",
                "apiregistration.k8s.io",
                "",
                "spec/service/namespace",
                true,
            ),
            FieldSpec::new(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                "",
                "spec/conversion/webhook/clientConfig/service/namespace",
                false,
            ),
        ];
        // Labels.
        let mut cl = vec![
            FieldSpec::any("metadata/labels", true),
            FieldSpec::new("Service", "", "v1", "spec/selector", true),
            FieldSpec::new("ReplicationController", "", "v1", "spec/selector", true),
            FieldSpec::new(
                "ReplicationController",
                "",
                "v1",
                "spec/template/metadata/labels",
                true,
            ),
            FieldSpec::new("Deployment", "", "", "spec/selector/matchLabels", true),
            FieldSpec::new("Deployment", "", "", "spec/template/metadata/labels", true),
        ];
        let affinity = [
            "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
            "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
            "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
            "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
        ];
        for p in affinity {
            cl.push(FieldSpec::new("Deployment", "apps", "", p, false));
        }
        cl.extend([
            FieldSpec::new(
                "ReplicaSet",
                "extensions",
                "v1beta1",
                "spec/selector/matchLabels",
                false,
            ),
            FieldSpec::new("ReplicaSet", "", "", "spec/selector/matchLabels", true),
            FieldSpec::new("ReplicaSet", "", "", "spec/template/metadata/labels", true),
            FieldSpec::new(
                "DaemonSet",
                "extensions",
                "v1beta1",
                "spec/selector/matchLabels",
                false,
            ),
            FieldSpec::new("DaemonSet", "", "", "spec/selector/matchLabels", true),
            FieldSpec::new("DaemonSet", "", "", "spec/template/metadata/labels", true),
            FieldSpec::new(
                "StatefulSet",
                "apps",
                "v1beta1",
                "spec/selector/matchLabels",
                false,
            ),
            FieldSpec::new("StatefulSet", "apps", "", "spec/selector/matchLabels", true),
            FieldSpec::new(
                "StatefulSet",
                "apps",
                "",
                "spec/template/metadata/labels",
                true,
            ),
        ]);
        for p in affinity {
            cl.push(FieldSpec::new("StatefulSet", "apps", "", p, false));
        }
        cl.extend([
            FieldSpec::new(
                "StatefulSet",
                "apps",
                "",
                "spec/volumeClaimTemplates[]/metadata/labels",
                true,
            ),
            FieldSpec::new("Job", "batch", "", "spec/selector/matchLabels", false),
            FieldSpec::new("Job", "batch", "", "spec/template/metadata/labels", true),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/spec/selector/matchLabels",
                false,
            ),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/metadata/labels",
                true,
            ),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/spec/template/metadata/labels",
                true,
            ),
            FieldSpec::new(
                "PodDisruptionBudget",
                "policy",
                "",
                "spec/selector/matchLabels",
                false,
            ),
            FieldSpec::new(
                "NetworkPolicy",
                "networking.k8s.io",
                "",
                "spec/podSelector/matchLabels",
                false,
            ),
            FieldSpec::new(
                "NetworkPolicy",
                "networking.k8s.io",
                "",
                "spec/ingress/from/podSelector/matchLabels",
                false,
            ),
            FieldSpec::new(
                "NetworkPolicy",
                "networking.k8s.io",
                "",
                "spec/egress/to/podSelector/matchLabels",
                false,
            ),
        ]);
        tc.common_labels = cl;
        tc.template_labels = vec![
            FieldSpec::new(
                "ReplicationController",
                "",
                "v1",
                "spec/template/metadata/labels",
                true,
            ),
            FieldSpec::new("Deployment", "", "", "spec/template/metadata/labels", true),
            FieldSpec::new("ReplicaSet", "", "", "spec/template/metadata/labels", true),
            FieldSpec::new("DaemonSet", "", "", "spec/template/metadata/labels", true),
            FieldSpec::new(
                "StatefulSet",
                "apps",
                "",
                "spec/template/metadata/labels",
                true,
            ),
            FieldSpec::new(
                "StatefulSet",
                "apps",
                "",
                "spec/volumeClaimTemplates[]/metadata/labels",
                true,
            ),
            FieldSpec::new("Job", "batch", "", "spec/template/metadata/labels", true),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/metadata/labels",
                true,
            ),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/spec/template/metadata/labels",
                true,
            ),
        ];
        tc.common_annotations = vec![
            FieldSpec::any("metadata/annotations", true),
            FieldSpec::new(
                "ReplicationController",
                "",
                "v1",
                "spec/template/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "Deployment",
                "",
                "",
                "spec/template/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "ReplicaSet",
                "",
                "",
                "spec/template/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "DaemonSet",
                "",
                "",
                "spec/template/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "StatefulSet",
                "apps",
                "",
                "spec/template/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "Job",
                "batch",
                "",
                "spec/template/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/metadata/annotations",
                true,
            ),
            FieldSpec::new(
                "CronJob",
                "batch",
                "",
                "spec/jobTemplate/spec/template/metadata/annotations",
                true,
            ),
        ];
        tc.images = vec![
            FieldSpec::any("spec/containers[]/image", false),
            FieldSpec::any("spec/initContainers[]/image", false),
            FieldSpec::any("spec/template/spec/containers[]/image", false),
            FieldSpec::any("spec/template/spec/initContainers[]/image", false),
        ];
        tc.replicas = [
            "Deployment",
            "ReplicationController",
            "ReplicaSet",
            "StatefulSet",
        ]
        .iter()
        .map(|k| FieldSpec::new(k, "", "", "spec/replicas", true))
        .collect();
        tc.var_reference = var_reference();
        tc.name_reference = name_reference();
        tc
    }
}

/// Workload kinds with a pod template, and the path prefix of the pod spec.
const POD_HOLDERS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
];

fn var_reference() -> Vec<FieldSpec> {
    let mut v = Vec::new();
    for (kind, base) in POD_HOLDERS {
        for c in ["containers", "initContainers"] {
            for f in ["args", "command", "env/value", "volumeMounts/mountPath"] {
                v.push(FieldSpec::new(
                    kind,
                    "",
                    "",
                    &format!("{base}/{c}/{f}"),
                    false,
                ));
            }
        }
        v.push(FieldSpec::new(
            kind,
            "",
            "",
            &format!("{base}/volumes/nfs/server"),
            false,
        ));
        if let Some(tmpl) = base.strip_suffix("/spec") {
            v.push(FieldSpec::new(
                kind,
                "",
                "",
                &format!("{tmpl}/metadata/annotations"),
                false,
            ));
        }
    }
    v.extend([
        FieldSpec::new("Ingress", "", "", "spec/rules/host", false),
        FieldSpec::new("Ingress", "", "", "spec/tls/hosts", false),
        FieldSpec::new("Ingress", "", "", "spec/tls/secretName", false),
        FieldSpec::new("Service", "", "", "spec/ports/port", false),
        FieldSpec::new("Service", "", "", "spec/ports/targetPort", false),
        FieldSpec::new(
            "StatefulSet",
            "",
            "",
            "spec/volumeClaimTemplates/spec/nfs/server",
            false,
        ),
        FieldSpec::new("PersistentVolume", "", "", "spec/nfs/server", false),
        FieldSpec::new(
            "CronJob",
            "",
            "",
            "spec/jobTemplate/spec/template/volumes/nfs/server",
            false,
        ),
        FieldSpec::any("metadata/labels", false),
        FieldSpec::any("metadata/annotations", false),
    ]);
    v
}

fn name_reference() -> Vec<NameBackRef> {
    let gvk = |k: &str, g: &str, v: &str| Gvk {
        group: g.into(),
        version: v.into(),
        kind: k.into(),
    };
    let fs = |k: &str, g: &str, v: &str, p: &str| FieldSpec::new(k, g, v, p, false);
    let scale = |k: &str| NameBackRef {
        gvk: gvk(k, "", ""),
        referrers: vec![fs(
            "HorizontalPodAutoscaler",
            "",
            "",
            "spec/scaleTargetRef/name",
        )],
    };
    let mut out = vec![
        scale("Deployment"),
        scale("ReplicationController"),
        scale("ReplicaSet"),
        scale("StatefulSet"),
    ];

    // ConfigMap.
    let mut cm = Vec::new();
    for (kind, base) in POD_HOLDERS {
        let v = if *kind == "Pod" { "v1" } else { "" };
        cm.push(fs(kind, "", v, &format!("{base}/volumes/configMap/name")));
        for c in ["containers", "initContainers"] {
            cm.push(fs(
                kind,
                "",
                v,
                &format!("{base}/{c}/env/valueFrom/configMapKeyRef/name"),
            ));
            cm.push(fs(
                kind,
                "",
                v,
                &format!("{base}/{c}/envFrom/configMapRef/name"),
            ));
        }
        cm.push(fs(
            kind,
            "",
            v,
            &format!("{base}/volumes/projected/sources/configMap/name"),
        ));
    }
    cm.extend([
        fs("Node", "", "", "spec/configSource/configMap"),
        fs("Role", "", "", "rules/resourceNames"),
        fs("ClusterRole", "", "", "rules/resourceNames"),
        fs(
            "Ingress",
            "",
            "",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
        ),
        fs(
            "Service",
            "serving.knative.dev",
            "v1",
            "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name",
        ),
        fs(
            "Service",
            "serving.knative.dev",
            "v1",
            "spec/template/spec/containers/envFrom/configMapRef/name",
        ),
    ]);
    out.push(NameBackRef {
        gvk: gvk("ConfigMap", "", "v1"),
        referrers: cm,
    });

    // Secret.
    let mut sec = Vec::new();
    for (kind, base) in POD_HOLDERS {
        let v = if *kind == "Pod" { "v1" } else { "" };
        sec.push(fs(
            kind,
            "",
            v,
            &format!("{base}/volumes/secret/secretName"),
        ));
        for c in ["containers", "initContainers"] {
            sec.push(fs(
                kind,
                "",
                v,
                &format!("{base}/{c}/env/valueFrom/secretKeyRef/name"),
            ));
            sec.push(fs(
                kind,
                "",
                v,
                &format!("{base}/{c}/envFrom/secretRef/name"),
            ));
        }
        sec.push(fs(kind, "", v, &format!("{base}/imagePullSecrets/name")));
        sec.push(fs(
            kind,
            "",
            v,
            &format!("{base}/volumes/projected/sources/secret/name"),
        ));
    }
    sec.extend([
        fs("Ingress", "", "", "spec/tls/secretName"),
        fs(
            "Ingress",
            "",
            "",
            "metadata/annotations/ingress.kubernetes.io\\/auth-secret",
        ),
        fs(
            "Ingress",
            "",
            "",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
        ),
        fs(
            "Ingress",
            "",
            "",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret",
        ),
        fs("ServiceAccount", "", "", "imagePullSecrets/name"),
        fs("StorageClass", "", "", "parameters/secretName"),
        fs("StorageClass", "", "", "parameters/adminSecretName"),
        fs("StorageClass", "", "", "parameters/userSecretName"),
        fs("StorageClass", "", "", "parameters/secretRef"),
        fs("Role", "", "", "rules/resourceNames"),
        fs("ClusterRole", "", "", "rules/resourceNames"),
        fs(
            "Service",
            "serving.knative.dev",
            "v1",
            "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
        ),
        fs("PersistentVolume", "", "", "spec/azureFile/secretName"),
    ]);
    out.push(NameBackRef {
        gvk: gvk("Secret", "", "v1"),
        referrers: sec,
    });

    out.push(NameBackRef {
        gvk: gvk("Service", "", "v1"),
        referrers: vec![
            fs("StatefulSet", "apps", "", "spec/serviceName"),
            fs(
                "Ingress",
                "",
                "",
                "spec/rules/http/paths/backend/serviceName",
            ),
            fs("Ingress", "", "", "spec/backend/serviceName"),
            fs(
                "Ingress",
                "",
                "",
                "spec/rules/http/paths/backend/service/name",
            ),
            fs("Ingress", "", "", "spec/defaultBackend/service/name"),
            fs(
                "APIService",
                "apiregistration.k8s.io",
                "",
                "spec/service/name",
            ),
            fs(
                "ValidatingWebhookConfiguration",
                "admissionregistration.k8s.io",
                "",
                "webhooks/clientConfig/service",
            ),
            fs(
                "MutatingWebhookConfiguration",
                "admissionregistration.k8s.io",
                "",
                "webhooks/clientConfig/service",
            ),
        ],
    });
    out.push(NameBackRef {
        gvk: gvk("Role", "rbac.authorization.k8s.io", ""),
        referrers: vec![fs(
            "RoleBinding",
            "rbac.authorization.k8s.io",
            "",
            "roleRef/name",
        )],
    });
    out.push(NameBackRef {
        gvk: gvk("ClusterRole", "rbac.authorization.k8s.io", ""),
        referrers: vec![
            fs(
                "RoleBinding",
                "rbac.authorization.k8s.io",
                "",
                "roleRef/name",
            ),
            fs(
                "ClusterRoleBinding",
                "rbac.authorization.k8s.io",
                "",
                "roleRef/name",
            ),
        ],
    });
    let mut sa = vec![
        fs("RoleBinding", "rbac.authorization.k8s.io", "", "subjects"),
        fs(
            "ClusterRoleBinding",
            "rbac.authorization.k8s.io",
            "",
            "subjects",
        ),
    ];
    for (kind, base) in POD_HOLDERS {
        sa.push(fs(kind, "", "", &format!("{base}/serviceAccountName")));
    }
    sa.push(fs(
        "ReplicationController",
        "",
        "",
        "spec/template/spec/serviceAccountName",
    ));
    out.push(NameBackRef {
        gvk: gvk("ServiceAccount", "", "v1"),
        referrers: sa,
    });

    let mut pvc = Vec::new();
    for (kind, base) in POD_HOLDERS {
        pvc.push(fs(
            kind,
            "",
            "",
            &format!("{base}/volumes/persistentVolumeClaim/claimName"),
        ));
    }
    pvc.push(fs(
        "ReplicationController",
        "",
        "",
        "spec/template/spec/volumes/persistentVolumeClaim/claimName",
    ));
    out.push(NameBackRef {
        gvk: gvk("PersistentVolumeClaim", "", "v1"),
        referrers: pvc,
    });
    out.push(NameBackRef {
        gvk: gvk("PersistentVolume", "", "v1"),
        referrers: vec![
            fs("PersistentVolumeClaim", "", "", "spec/volumeName"),
            fs("ClusterRole", "", "", "rules/resourceNames"),
        ],
    });
    out.push(NameBackRef {
        gvk: gvk("StorageClass", "storage.k8s.io", "v1"),
        referrers: vec![
            fs("PersistentVolume", "", "", "spec/storageClassName"),
            fs("PersistentVolumeClaim", "", "", "spec/storageClassName"),
            fs(
                "StatefulSet",
                "",
                "",
                "spec/volumeClaimTemplates/spec/storageClassName",
            ),
        ],
    });
    let mut pc = Vec::new();
    for (kind, base) in POD_HOLDERS {
        pc.push(fs(kind, "", "", &format!("{base}/priorityClassName")));
    }
    pc.push(fs(
        "ReplicationController",
        "",
        "",
        "spec/template/spec/priorityClassName",
    ));
    out.push(NameBackRef {
        gvk: gvk("PriorityClass", "scheduling.k8s.io", "v1"),
        referrers: pc,
    });
    out.push(NameBackRef {
        gvk: gvk("IngressClass", "networking.k8s.io/v1", "v1"),
        referrers: vec![fs("Ingress", "", "", "spec/ingressClassName")],
    });
    out.push(NameBackRef {
        gvk: gvk(
            "ValidatingAdmissionPolicy",
            "admissionregistration.k8s.io",
            "",
        ),
        referrers: vec![fs(
            "ValidatingAdmissionPolicyBinding",
            "admissionregistration.k8s.io",
            "",
            "spec/policyName",
        )],
    });
    out
}

/// Splits a field-spec path on `/`, honouring `\/` escapes.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'/') {
            cur.push('/');
            chars.next();
        } else if c == '/' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Walks `obj` along `path` (sequences are traversed element-wise), creating
/// missing maps when `create` is set, and calls `f` on each value found.
/// Missing values reached with `create` are passed as `Null` and kept if `f`
/// replaces them.
pub fn apply<F>(obj: &mut Value, path: &[String], create: bool, f: &mut F) -> Result<(), String>
where
    F: FnMut(&mut Value) -> Result<(), String>,
{
    if path.is_empty() {
        return f(obj);
    }
    match obj {
        Value::Null => Ok(()),
        Value::Seq(items) => {
            for it in items {
                apply(it, path, create, f)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            let (seg, is_seq) = match path[0].strip_suffix("[]") {
                Some(s) => (s, true),
                None => (path[0].as_str(), false),
            };
            if let Some(child) = m.get_mut(seg) {
                if child.is_null() && create && !is_seq && path.len() > 1 {
                    *child = Value::Map(Map::new());
                }
                return apply(child, &path[1..], create, f);
            }
            if !create || is_seq {
                return Ok(());
            }
            let mut child = if path.len() > 1 {
                Value::Map(Map::new())
            } else {
                Value::Null
            };
            apply(&mut child, &path[1..], create, f)?;
            if path.len() > 1 || !child.is_null() {
                m.insert(seg, child);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
