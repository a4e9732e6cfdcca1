//! Schema plumbing shared by the kinds.
//!
//! kube's derive wraps optional fields in `nullable: true` and always requires `spec`; Flux's
//! CRDs (made by controller-gen) do neither. The root schemas of every kind
//! ([`crate::GitRepository`], [`crate::Kustomization`], ...) are therefore written here:
//! `apiVersion`, `kind`, `metadata`, `spec` and `status` as controller-gen lays them out, with the
//! `null` alternatives that schemars adds for `Option` removed. An API server prunes a `null` field of a non-nullable schema instead of
//! rejecting it, so this admits what Flux's CRDs admit, and nothing sluice writes is ever `null`.

use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// The root schema of a Flux kind with the given spec and status.
pub(crate) fn root<Spec: JsonSchema, Status: JsonSchema>(
    generator: &mut SchemaGenerator,
    description: &str,
) -> Schema {
    let mut status = generator.subschema_for::<Status>();
    status.insert("default".into(), json!({ "observedGeneration": -1 }));
    root_with(generator.subschema_for::<Spec>(), Some(status), description)
}

/// The root schema of a Flux kind whose status has no `observedGeneration` and so no default
/// (ExternalArtifact, whose status its producer writes).
pub(crate) fn root_with_plain_status<Spec: JsonSchema, Status: JsonSchema>(
    generator: &mut SchemaGenerator,
    description: &str,
) -> Schema {
    let status = generator.subschema_for::<Status>();
    root_with(generator.subschema_for::<Spec>(), Some(status), description)
}

/// The root schema of a Flux kind without a status (notification-controller's `v1beta3`
/// Provider and Alert).
pub(crate) fn root_without_status<Spec: JsonSchema>(
    generator: &mut SchemaGenerator,
    description: &str,
) -> Schema {
    root_with(generator.subschema_for::<Spec>(), None, description)
}

fn root_with(spec: Schema, status: Option<Schema>, description: &str) -> Schema {
    let mut schema = json_schema!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.\nServers should convert recognized schemas to the latest internal value, and\nmay reject unrecognized values.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string"
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.\nServers may infer this from the endpoint the client submits requests to.\nCannot be updated.\nIn CamelCase.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string"
            },
            "metadata": { "type": "object" },
            "spec": spec,
        }
    });
    if let (Some(status), Some(properties)) = (
        status,
        schema.get_mut("properties").and_then(Value::as_object_mut),
    ) {
        properties.insert("status".into(), status.to_value());
    }
    NotNullable.transform(&mut schema);
    schema
}

/// Removes the `null` alternative schemars gives `Option<T>` (as a `type` entry, an `enum`
/// value, a `nullable` flag, or an `anyOf`/`oneOf` branch).
struct NotNullable;

fn is_null_schema(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    object.get("type") == Some(&json!("null"))
        || object.get("const") == Some(&Value::Null)
        || object.get("enum") == Some(&json!([null]))
}

impl Transform for NotNullable {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            object.remove("nullable");
            if let Some(Value::Array(types)) = object.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    object.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(values)) = object.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            for keyword in ["anyOf", "oneOf"] {
                let Some(Value::Array(branches)) = object.get_mut(keyword) else {
                    continue;
                };
                branches.retain(|branch| !is_null_schema(branch));
                if branches.len() == 1 {
                    let Some(Value::Object(only)) = object
                        .remove(keyword)
                        .and_then(|mut b| b.as_array_mut().and_then(|a| a.pop()))
                    else {
                        continue;
                    };
                    for (key, value) in only {
                        object.entry(key).or_insert(value);
                    }
                }
            }
        }
        transform_subschemas(self, schema);
    }
}

/// The schema of a `[]metav1.Condition` field as controller-gen writes it, with the validations
/// of `metav1.Condition` (k8s-openapi's schema for [`Condition`] leaves them out). The same
/// bounds as Flux's CRDs, so a condition sluice could not store with Flux's CRDs is refused by
/// sluice's own CRDs too.
///
/// [`Condition`]: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition
pub(crate) fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "description": "Condition contains details for one aspect of the current state of this API Resource.",
            "type": "object",
            "properties": {
                "lastTransitionTime": {
                    "description": "lastTransitionTime is the last time the condition transitioned from one status to another.\nThis should be when the underlying condition changed.  If that is not known, then using the time when the API field changed is acceptable.",
                    "format": "date-time",
                    "type": "string"
                },
                "message": {
                    "description": "message is a human readable message indicating details about the transition.\nThis may be an empty string.",
                    "maxLength": 32768,
                    "type": "string"
                },
                "observedGeneration": {
                    "description": "observedGeneration represents the .metadata.generation that the condition was set based upon.\nFor instance, if .metadata.generation is currently 12, but the .status.conditions[x].observedGeneration is 9, the condition is out of date\nwith respect to the current state of the instance.",
                    "format": "int64",
                    "minimum": 0,
                    "type": "integer"
                },
                "reason": {
                    "description": "reason contains a programmatic identifier indicating the reason for the condition's last transition.\nProducers of specific condition types may define expected values and meanings for this field,\nand whether the values are considered a guaranteed API.\nThe value should be a CamelCase string.\nThis field may not be empty.",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                    "type": "string"
                },
                "status": {
                    "description": "status of the condition, one of True, False, Unknown.",
                    "enum": ["True", "False", "Unknown"],
                    "type": "string"
                },
                "type": {
                    "description": "type of condition in CamelCase or in foo.example.com/CamelCase.",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                    "type": "string"
                }
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"]
        }
    })
}

/// The schema of a Go `int` field as controller-gen writes it: an integer without a `format`
/// (schemars gives `i64` the format `int64`, which only Go's `int64` fields have).
pub(crate) fn go_int(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// The schema of a free-form field (`apiextensionsv1.JSON`): anything, kept as written.
pub(crate) fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}
