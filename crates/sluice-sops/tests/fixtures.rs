//! Fixtures encrypted by the real sops (testdata/regenerate.sh) decrypt to
//! their plaintext originals; tampering, wrong keys and unsupported
//! methods fail naming the document and the cause, never a value.

use std::path::PathBuf;

use serde_json::Value;
use sluice_sops::{Cause, Identities, Options, decrypt_json, decrypt_object, decrypt_yaml};

fn read(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ids() -> Identities {
    Identities::parse(&read("test.agekey")).unwrap()
}

fn plain_yaml(name: &str) -> Value {
    serde_norway::from_str(&read(name)).unwrap()
}

fn decrypt_one(name: &str, ids: &Identities) -> Result<Value, sluice_sops::Error> {
    decrypt_yaml(&read(name), ids, &Options::default(), name).map(|mut v| v.remove(0))
}

#[test]
fn decrypts_every_yaml_fixture_to_its_original() {
    for base in [
        "secret",
        "configmap",
        "secret-regex",
        "commented",
        "mac-only",
    ] {
        let got = decrypt_one(&format!("{base}.sops.yaml"), &ids())
            .unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(got, plain_yaml(&format!("{base}.plain.yaml")), "{base}");
        assert!(got.get("sops").is_none());
    }
}

#[test]
fn decrypts_the_json_fixture_with_its_types() {
    let got = decrypt_json(
        &read("secret.sops.json"),
        &ids(),
        &Options::default(),
        "json",
    )
    .unwrap();
    let want: Value = serde_json::from_str(&read("secret.plain.json")).unwrap();
    assert_eq!(got, want);
    assert_eq!(got["stringData"]["port"], serde_json::json!(5432));
    assert_eq!(got["stringData"]["on"], Value::Bool(true));
}

#[test]
fn decrypts_an_object_already_parsed_and_names_it() {
    let obj: Value = serde_norway::from_str(&read("secret-regex.sops.yaml")).unwrap();
    assert!(sluice_sops::is_encrypted(&obj));
    let got = decrypt_object(&obj, &ids(), &Options::default()).unwrap();
    assert_eq!(got, plain_yaml("secret-regex.plain.yaml"));
    assert!(!sluice_sops::is_encrypted(&plain_yaml(
        "secret-regex.plain.yaml"
    )));
}

#[test]
fn unencrypted_values_stay_readable_in_the_fixture() {
    // encrypted_regex leaves metadata alone; the default suffix rule leaves
    // *_unencrypted keys alone.
    let enc: Value = serde_norway::from_str(&read("secret-regex.sops.yaml")).unwrap();
    assert_eq!(enc["metadata"]["name"], "api-key");
    assert!(
        enc["stringData"]["key"]
            .as_str()
            .unwrap()
            .starts_with("ENC[AES256_GCM,")
    );
    let enc: Value = serde_norway::from_str(&read("configmap.sops.yaml")).unwrap();
    assert_eq!(enc["nested"]["plain_unencrypted"], "stays readable");
}

/// Changes one base64 character of the `data:` of the value on `line_key`.
fn tamper(text: &str, line_key: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.trim_start().starts_with(line_key) {
            let i = line.find("data:").unwrap() + "data:".len();
            let mut b = line.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            out.push_str(std::str::from_utf8(&b).unwrap());
            done = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(done, "{line_key} not found");
    out
}

#[test]
fn a_tampered_value_fails_and_names_its_path() {
    let text = tamper(&read("secret-regex.sops.yaml"), "key: ENC[");
    let err =
        decrypt_yaml(&text, &ids(), &Options::default(), "secret-regex.sops.yaml").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err.cause, Cause::Value { ref path, .. } if path == "stringData.key"),
        "{msg}"
    );
    assert!(
        msg.starts_with("secret-regex.sops.yaml: value at 'stringData.key'"),
        "{msg}"
    );
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(!msg.contains("abc123") && !msg.contains("ENC["), "{msg}");
}

#[test]
fn a_tampered_plain_value_fails_the_mac() {
    // metadata.name is not encrypted (encrypted_regex) but is covered by
    // the MAC, as in sops.
    let text = read("secret-regex.sops.yaml").replace("name: api-key", "name: api-kez");
    let err = decrypt_yaml(&text, &ids(), &Options::default(), "f").unwrap_err();
    assert!(matches!(err.cause, Cause::MacMismatch), "{err}");
    assert!(err.to_string().contains("MAC mismatch"));
    // Without MAC verification (Flux's default) the values still decrypt.
    let opts = Options { verify_mac: false };
    let got = decrypt_yaml(&text, &ids(), &opts, "f").unwrap().remove(0);
    assert_eq!(got["stringData"]["key"], "abc123");
}

#[test]
fn reordered_values_fail_the_mac() {
    // Swapping two plain lines changes the MAC input order.
    let text = read("secret-regex.sops.yaml").replace(
        "    name: api-key\n    namespace: apps\n",
        "    namespace: apps\n    name: api-key\n",
    );
    assert_ne!(text, read("secret-regex.sops.yaml"));
    let err = decrypt_yaml(&text, &ids(), &Options::default(), "f").unwrap_err();
    assert!(matches!(err.cause, Cause::MacMismatch), "{err}");
}

#[test]
fn mac_only_encrypted_ignores_plain_values() {
    let text = read("mac-only.sops.yaml").replace("name: mac-only", "name: renamed");
    let got = decrypt_yaml(&text, &ids(), &Options::default(), "f")
        .unwrap()
        .remove(0);
    assert_eq!(got["metadata"]["name"], "renamed");
    assert_eq!(got["stringData"]["password"], "hunter2");
}

#[test]
fn a_wrong_key_names_both_sides_public_keys_only() {
    let other = Identities::parse(&read("other.agekey")).unwrap();
    let err = decrypt_one("secret.sops.yaml", &other).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err.cause, Cause::NoMatchingIdentity { .. }),
        "{msg}"
    );
    let want = sluice_sops::Identities::parse(&read("test.agekey"))
        .unwrap()
        .recipients();
    assert!(msg.contains(&want[0]), "{msg}");
    assert!(msg.contains(&other.recipients()[0]), "{msg}");
    assert!(!msg.contains("AGE-SECRET-KEY"), "{msg}");
}

#[test]
fn several_identities_per_file_with_comments() {
    let both = format!(
        "{}\n\n# second\n{}",
        read("other.agekey"),
        read("test.agekey")
    );
    let ids = Identities::parse(&both).unwrap();
    assert_eq!(ids.len(), 2);
    decrypt_one("secret.sops.yaml", &ids).unwrap();
    let mut ids = Identities::new();
    ids.import(&read("other.agekey")).unwrap();
    ids.import(&read("test.agekey")).unwrap();
    decrypt_one("configmap.sops.yaml", &ids).unwrap();
    assert!(!format!("{ids:?}").contains("AGE-SECRET-KEY"));
}

#[test]
fn bad_key_files_are_refused_without_quoting_them() {
    let err = Identities::parse("# c\nAGE-SECRET-KEY-1NOTAKEY\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2") && !err.contains("NOTAKEY"), "{err}");
    assert!(Identities::parse("# only a comment\n").is_err());
    let err = Identities::parse("AGE-PLUGIN-YUBIKEY-1XYZ\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin"), "{err}");
}

#[test]
fn other_methods_and_missing_identities_are_named() {
    let mut obj: Value = serde_norway::from_str(&read("secret-regex.sops.yaml")).unwrap();
    let no_ids = Identities::new();
    let err = decrypt_object(&obj, &no_ids, &Options::default()).unwrap_err();
    assert!(matches!(err.cause, Cause::NoIdentities), "{err}");
    assert!(
        err.to_string().starts_with("Secret/apps/api-key: "),
        "{err}"
    );

    let sops = obj["sops"].as_object_mut().unwrap();
    sops.remove("age");
    sops.insert(
        "hc_vault".into(),
        serde_json::json!([{"vault_address": "v"}]),
    );
    let err = decrypt_object(&obj, &ids(), &Options::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("only for HashiCorp Vault;") && msg.contains("age and PGP keys only"),
        "{msg}"
    );
}

#[test]
fn a_document_without_sops_metadata_is_refused() {
    let err = decrypt_object(
        &plain_yaml("secret.plain.yaml"),
        &ids(),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err.cause, Cause::NotEncrypted), "{err}");
}

#[test]
fn comment_rules_are_refused_clearly() {
    let mut obj: Value = serde_norway::from_str(&read("secret-regex.sops.yaml")).unwrap();
    obj["sops"]["encrypted_comment_regex"] = "sops:enc".into();
    obj["sops"]
        .as_object_mut()
        .unwrap()
        .remove("encrypted_regex");
    let err = decrypt_object(&obj, &ids(), &Options::default()).unwrap_err();
    assert!(matches!(err.cause, Cause::Unsupported(_)), "{err}");
}

// Whole files, as a secretGenerator's `envs:` and `files:` use them.

fn file(name: &str, format: sluice_sops::Format) -> Result<Vec<u8>, sluice_sops::Error> {
    sluice_sops::decrypt_file(
        read(name).as_bytes(),
        format,
        &ids(),
        &Options::default(),
        name,
    )
}

#[test]
fn a_dotenv_file_decrypts_to_what_sops_prints_without_comments() {
    use sluice_sops::Format;
    assert_eq!(Format::for_path("app.sops.env"), Format::Dotenv);
    assert!(Format::Dotenv.is_encrypted(read("app.sops.env").as_bytes()));
    assert!(!Format::Dotenv.is_encrypted(read("app.plain.env").as_bytes()));
    // The MAC is verified (Options::default()): comments are not part of it.
    let out = String::from_utf8(file("app.sops.env", Format::Dotenv).unwrap()).unwrap();
    let want: String = read("app.plain.env")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(out, want);
    assert!(out.contains("MULTI=line one\\nline two\n"), "{out}");
    assert!(out.contains("DB_PASSWORD=s3cr3t=with=equals\n"), "{out}");
}

#[test]
fn a_binary_file_decrypts_to_its_exact_bytes() {
    use sluice_sops::Format;
    assert_eq!(Format::for_path("cert.sops.txt"), Format::Binary);
    assert!(Format::Binary.is_encrypted(read("cert.sops.txt").as_bytes()));
    let out = file("cert.sops.txt", Format::Binary).unwrap();
    assert_eq!(out, read("cert.plain.txt").into_bytes());
}

#[test]
fn json_and_yaml_files_decrypt_to_the_same_values() {
    use sluice_sops::Format;
    let out = file("secret.sops.json", Format::Json).unwrap();
    let got: Value = serde_json::from_slice(&out).unwrap();
    let want: Value = serde_json::from_str(&read("secret.plain.json")).unwrap();
    assert_eq!(got, want);
    assert!(
        out.starts_with(b"{\n\t\""),
        "tab-indented as sops prints JSON"
    );
    let out = file("configmap.sops.yaml", Format::Yaml).unwrap();
    let got: Value = serde_norway::from_slice(&out).unwrap();
    assert_eq!(got, plain_yaml("configmap.plain.yaml"));
}

#[test]
fn whole_files_fail_naming_the_file_never_a_value() {
    use sluice_sops::Format;
    // A value changed in transit fails its own authentication.
    let tampered = read("app.sops.env").replacen(
        "DB_USER=ENC[AES256_GCM,data:",
        "DB_USER=ENC[AES256_GCM,data:AA",
        1,
    );
    let e = sluice_sops::decrypt_file(
        tampered.as_bytes(),
        Format::Dotenv,
        &ids(),
        &Options::default(),
        "apps/app.sops.env",
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("apps/app.sops.env: "), "{msg}");
    assert!(msg.contains("DB_USER"), "{msg}");
    assert!(!msg.contains("s3cr3t") && !msg.contains("app\n"), "{msg}");
    // The wrong key.
    let other = Identities::parse(&read("other.agekey")).unwrap();
    let e = sluice_sops::decrypt_file(
        read("cert.sops.txt").as_bytes(),
        Format::Binary,
        &other,
        &Options::default(),
        "cert.sops.txt",
    )
    .unwrap_err();
    assert!(matches!(e.cause, Cause::NoMatchingIdentity { .. }), "{e}");
    // INI is named, not guessed at.
    let e = sluice_sops::decrypt_file(
        b"[sops]\n",
        Format::Ini,
        &ids(),
        &Options::default(),
        "a.ini",
    )
    .unwrap_err();
    assert!(e.to_string().contains("INI"), "{e}");
}

fn pgp_keys(names: &[&str]) -> Identities {
    let mut ids = Identities::new();
    for n in names {
        ids.import_pgp(&read(&format!("test-{n}.asc"))).unwrap();
    }
    ids
}

#[test]
fn pgp_keys_decrypt_what_sops_encrypted_for_them() {
    // An RSA key as Flux's SOPS guide makes it, and gpg's default (ed25519, cv25519 subkey).
    for k in ["rsa", "ecc"] {
        let got = decrypt_one(&format!("secret.pgp-{k}.sops.yaml"), &pgp_keys(&[k]))
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(got, plain_yaml("secret.plain.yaml"), "{k}");
    }
    // Both keys, and age identities beside them: the one the document names is used.
    let mut all = pgp_keys(&["ecc", "rsa"]);
    all.import(&read("test.agekey")).unwrap();
    for f in [
        "secret.pgp-rsa.sops.yaml",
        "secret.pgp-ecc.sops.yaml",
        "secret.sops.yaml",
    ] {
        assert_eq!(
            decrypt_one(f, &all).unwrap(),
            plain_yaml("secret.plain.yaml"),
            "{f}"
        );
    }
}

#[test]
fn a_pgp_document_without_its_key_names_fingerprints() {
    let err = decrypt_one("secret.pgp-rsa.sops.yaml", &pgp_keys(&["ecc"])).unwrap_err();
    assert!(
        matches!(err.cause, Cause::NoMatchingIdentity { .. }),
        "{err}"
    );
    let msg = err.to_string();
    let have = &pgp_keys(&["ecc"]).pgp_fingerprints()[0];
    let want = &pgp_keys(&["rsa"]).pgp_fingerprints()[0];
    assert!(
        msg.contains(&format!("encrypted for PGP key {want}")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("keys given are for PGP key {have}")),
        "{msg}"
    );
    // age identities only: the same, naming the age recipient.
    let err = decrypt_one("secret.pgp-rsa.sops.yaml", &ids()).unwrap_err();
    assert!(
        matches!(err.cause, Cause::NoMatchingIdentity { .. }),
        "{err}"
    );
    // Never any key material in messages.
    assert!(!msg.contains("PRIVATE"));
}

#[test]
fn pgp_key_files_are_checked() {
    let mut ids = Identities::new();
    let err = ids.import_pgp("not a key").unwrap_err().to_string();
    assert!(err.starts_with("not an armored PGP secret key"), "{err}");
    // A damaged key: the error quotes none of it.
    let key = read("test-rsa.asc");
    let damaged = key.replacen("\n", "\nZZZZ", 6);
    let err = ids.import_pgp(&damaged).unwrap_err().to_string();
    assert!(!err.contains("ZZZZ") && err.len() < 120, "{err}");
    // A public key is not a secret key.
    let public = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0AAABYJKwYBBAHaRw8BAQdA\n-----END PGP PUBLIC KEY BLOCK-----\n";
    assert!(ids.import_pgp(public).is_err());
    assert!(ids.is_empty());
    assert_eq!(ids.import_pgp(&read("test-rsa.asc")).unwrap(), 1);
    assert_eq!(ids.len(), 1);
    assert!(!format!("{ids:?}").contains("PRIVATE"));
}
