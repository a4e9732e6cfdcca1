//! Prints sluice's CustomResourceDefinitions as a multi-document YAML stream:
//!
//! ```sh
//! cargo run -p sluice-api --example crds > crds.yaml
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = String::new();
    for crd in sluice_api::crds() {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd)?);
    }
    print!("{out}");
    Ok(())
}
