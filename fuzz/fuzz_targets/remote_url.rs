//! kustomize's remote-target syntax (`sluice_kustomize::remote`) on any
//! string: `parse`, `is_remote`, `is_http_url`, `is_unmistakably_git` and
//! `redact_url` return, never panic. Resource entries come from Git, and
//! `redact_url` also runs over error messages that quote them.
//!
//! Also checked:
//! - a parsed `?timeout=` never exceeds `MAX_TIMEOUT`;
//! - `is_unmistakably_git` implies `parse` accepts the entry;
//! - `redact_url` is idempotent;
//! - when the input holds a URL of the form `scheme://user:pass@host...`
//!   (the first `://` of the text), `redact_url`'s output does not contain
//!   `pass` (unless `pass` also appears in the parts that stay visible).
//!
//! Input: any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_kustomize::remote;

/// Characters that end a URL's authority for `redact_url` (besides
/// whitespace): the start of a path, query or fragment, or quoting around
/// the URL.
fn ends_authority(c: char) -> bool {
    matches!(c, '/' | '?' | '#' | '"' | '`' | '<' | '>' | '\\') || c.is_whitespace()
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// The password of the first URL of `text` when that URL has the shape
/// `scheme://user:pass@...` and `pass` is something redaction must hide:
/// not empty, no `*` (the mask itself), and not also present in what stays
/// visible (the text up to the user name and everything after the `@`).
fn password(text: &str) -> Option<&str> {
    let i = text.find("://")?;
    let before = &text[..i];
    let scheme_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_scheme_char(c))
        .map_or(0, |(j, c)| j + c.len_utf8());
    if !before[scheme_start..].starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let after = &text[i + 3..];
    let at = after.find('@')?;
    let userinfo = &after[..at];
    if userinfo.contains(ends_authority) {
        return None;
    }
    let (user, pass) = userinfo.split_once(':')?;
    let rest = &after[at + 1..];
    let visible = format!("{}{user}:***@", &text[..i + 3]);
    if pass.is_empty() || pass.contains('*') || visible.contains(pass) || rest.contains(pass) {
        return None;
    }
    Some(pass)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spec = remote::parse(text);
    if let Some(spec) = &spec {
        assert!(
            spec.timeout <= remote::MAX_TIMEOUT,
            "timeout {:?} over the cap for {text:?}",
            spec.timeout
        );
        let _ = spec.path_exits_repo();
        let _ = remote::redact_url(&spec.clone_url);
    }
    assert_eq!(remote::is_remote(text), spec.is_some());
    let _ = remote::is_http_url(text);
    if remote::is_unmistakably_git(text) {
        assert!(spec.is_some(), "unmistakably Git but not parsed: {text:?}");
    }

    let redacted = remote::redact_url(text);
    assert_eq!(
        remote::redact_url(&redacted),
        redacted,
        "redaction is not idempotent for {text:?}"
    );
    if let Some(pass) = password(text) {
        assert!(
            !redacted.contains(pass),
            "password {pass:?} left in {redacted:?} (input {text:?})"
        );
    }
});
