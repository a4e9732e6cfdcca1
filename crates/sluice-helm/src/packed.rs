//! A chart file's bytes: as read, or packed while nobody reads them.
//!
//! A controller keeps a chart loaded as long as a release of it is being made or waited on,
//! which can be minutes, and most of its bytes are read only at a few moments:
//! kube-prometheus-stack carries 4.7 MB of CRDs in a subchart, read once when they are applied
//! and kept through every wait. [`crate::chart::Chart::pack`] deflates a loaded chart's files
//! (about a fifth of their size for YAML); whoever reads a packed file gets its bytes inflated
//! into a copy of its own, dropped when done. A chart loaded to be rendered once (`helm
//! template`) is never packed, and its files are read where they lie.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::sync::Arc;

/// Files smaller than this stay as they are: deflate gains little on them and costs a call.
const PACK_AT_LEAST: usize = 512;

/// The bytes of a chart file, shared by the chart and everything made from it (a rendered
/// chart's `.Files`, a release record); packed or not, it reads the same.
#[derive(Clone)]
pub struct Data(Repr);

#[derive(Clone)]
enum Repr {
    Plain(Arc<[u8]>),
    /// Raw deflate of `len` bytes.
    Packed {
        len: usize,
        deflated: Arc<[u8]>,
    },
    /// Bytes another owner holds, from `start` on (a byte order mark skipped): a file
    /// mapped into memory ([`crate::chart::Limits::map`]), read where the kernel's page
    /// cache holds it, neither copied nor zeroed first.
    Mapped {
        map: Arc<dyn Bytes>,
        start: usize,
    },
}

impl Data {
    /// The number of bytes (unpacked).
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Plain(b) => b.len(),
            Repr::Packed { len, .. } => *len,
            Repr::Mapped { map, start } => map.bytes().len() - start,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes held in memory: [`Data::len`], or fewer when packed.
    pub fn held(&self) -> usize {
        match &self.0 {
            Repr::Plain(b) => b.len(),
            Repr::Packed { deflated, .. } => deflated.len(),
            Repr::Mapped { .. } => self.len(),
        }
    }

    /// Whether the bytes are held deflated.
    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed { .. })
    }

    /// The bytes: borrowed when plain, inflated into a copy when packed.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.0 {
            Repr::Plain(b) => Cow::Borrowed(b),
            Repr::Packed { len, deflated } => Cow::Owned(inflate(deflated, *len)),
            Repr::Mapped { map, start } => Cow::Borrowed(&map.bytes()[*start..]),
        }
    }

    /// The bytes as a shared buffer: this one when plain, a new one when packed.
    pub fn shared(&self) -> Arc<[u8]> {
        match &self.0 {
            Repr::Plain(b) => b.clone(),
            Repr::Packed { len, deflated } => inflate(deflated, *len).into(),
            Repr::Mapped { map, start } => {
                let copy = map.bytes()[*start..].into();
                map.release();
                copy
            }
        }
    }

    /// Tells a mapped file's holder that its bytes were copied out ([`Bytes::release`]):
    /// what a template reads from a mapped chart then lives once in memory, in its copy.
    pub(crate) fn release(&self) {
        if let Repr::Mapped { map, .. } = &self.0 {
            map.release();
        }
    }

    /// The bytes as shared text, or `None` where they are not UTF-8: the chart's own buffer
    /// when plain (no copy), a new one when packed.
    pub fn text(&self) -> Option<Arc<str>> {
        match &self.0 {
            Repr::Plain(b) => shared_str(b.clone()),
            Repr::Packed { len, deflated } => String::from_utf8(inflate(deflated, *len))
                .ok()
                .map(Arc::from),
            Repr::Mapped { map, start } => {
                let copy = std::str::from_utf8(&map.bytes()[*start..])
                    .ok()
                    .map(Arc::from);
                map.release();
                copy
            }
        }
    }

    /// The same bytes, deflated unless that gains too little (a small file, or one that is
    /// already compressed: an image, a nested archive).
    pub(crate) fn packed(&self) -> Data {
        let b: &[u8] = match &self.0 {
            Repr::Plain(b) => b,
            Repr::Mapped { map, start } => &map.bytes()[*start..],
            Repr::Packed { .. } => return self.clone(),
        };
        if b.len() < PACK_AT_LEAST {
            return self.clone();
        }
        let mut enc = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(b.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing to a `Vec` does not fail.
        let deflated = match enc.write_all(b).and_then(|()| enc.finish()) {
            Ok(d) => d,
            Err(_) => return self.clone(),
        };
        // Kept plain unless packing saves at least an eighth.
        if deflated.len() > b.len() - b.len() / 8 {
            return self.clone();
        }
        Data(Repr::Packed {
            len: b.len(),
            deflated: deflated.into(),
        })
    }
}

/// `bytes` as shared text, the same allocation, if they are UTF-8. The standard library
/// converts `Arc<str>` to `Arc<[u8]>` but not back; a template parsed from a plain chart would
/// otherwise be copied whole for its parsed trees to share (kube-prometheus-stack: 1.5 MB).
fn shared_str(bytes: Arc<[u8]>) -> Option<Arc<str>> {
    std::str::from_utf8(&bytes).ok()?;
    let raw = Arc::into_raw(bytes) as *const str;
    // SAFETY: `str` is `[u8]` with the invariant that it is UTF-8, checked just above, and has
    // the same layout, so the pointer (with its length) is that of an `Arc<str>` of the same
    // allocation; `into_raw` gave up the one reference `from_raw` takes back.
    Some(unsafe { Arc::from_raw(raw) })
}

/// Inflates what [`Data::packed`] deflated.
fn inflate(deflated: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let read = flate2::read::DeflateDecoder::new(deflated)
        .take(len as u64)
        .read_to_end(&mut out);
    // Only this module makes packed data, from bytes it just deflated into memory that
    // nothing else writes: a failure here is a bug, not bad input.
    assert!(
        read.is_ok() && out.len() == len,
        "a packed chart file did not inflate to its {len} bytes"
    );
    out
}

/// Bytes held by someone else for as long as the [`Data`] made of them lives: a file mapped
/// into memory by the command that loads a chart ([`crate::chart::MapFile`]).
pub trait Bytes: Send + Sync {
    fn bytes(&self) -> &[u8];
    /// The bytes were copied out: the holder may let go of what keeps them resident (a
    /// mapping's pages, which count in the process's memory once read). They must stay
    /// readable: a later [`Bytes::bytes`] reads them again (kube-prometheus-stack's CRD
    /// upgrade job reads 4.6 MB of mapped CRDs into a ConfigMap; keeping their pages too
    /// cost 3 MiB of peak memory).
    fn release(&self) {}
}

impl Data {
    /// `owner`'s bytes, `bom` skipped where they start with it.
    pub(crate) fn held_by(owner: Arc<dyn Bytes>, bom: &[u8]) -> Data {
        let start = if owner.bytes().starts_with(bom) {
            bom.len()
        } else {
            0
        };
        Data(Repr::Mapped { map: owner, start })
    }
}

impl From<Arc<[u8]>> for Data {
    fn from(b: Arc<[u8]>) -> Data {
        Data(Repr::Plain(b))
    }
}

impl From<Vec<u8>> for Data {
    fn from(b: Vec<u8>) -> Data {
        Data(Repr::Plain(b.into()))
    }
}

impl From<&[u8]> for Data {
    fn from(b: &[u8]) -> Data {
        Data(Repr::Plain(b.into()))
    }
}

impl From<&str> for Data {
    fn from(s: &str) -> Data {
        s.as_bytes().into()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        match (&self.0, &other.0) {
            (Repr::Plain(a), Repr::Plain(b)) => a == b,
            _ => self.len() == other.len() && self.bytes() == other.bytes(),
        }
    }
}

impl Eq for Data {}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Plain(b) => match std::str::from_utf8(b) {
                Ok(s) if s.len() <= 64 => write!(f, "{s:?}"),
                _ => write!(f, "<{} bytes>", b.len()),
            },
            Repr::Packed { len, deflated } => {
                write!(f, "<{len} bytes, packed in {}>", deflated.len())
            }
            Repr::Mapped { .. } => write!(f, "<{} bytes, mapped>", self.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Data, Repr};
    use std::sync::Arc;

    #[test]
    fn text_is_the_plain_buffer_itself_or_an_inflated_copy() {
        let plain = Data::from(Arc::<[u8]>::from("kind: ConfigMap\n".repeat(64).as_bytes()));
        let Repr::Plain(bytes) = &plain.0 else {
            panic!("plain")
        };
        let text = plain.text().unwrap();
        assert_eq!(text.as_ptr(), bytes.as_ptr());
        assert_eq!(text.as_bytes(), &bytes[..]);
        let packed = plain.packed();
        assert!(packed.is_packed());
        assert_eq!(packed.text().unwrap(), text);
        drop(plain);
        assert_eq!(&*text, "kind: ConfigMap\n".repeat(64));
        for bad in [
            Data::from(&b"\xff\xfe"[..]),
            Data::from(&[b'\xff'; 2048][..]).packed(),
        ] {
            assert!(bad.text().is_none());
        }
    }

    #[test]
    fn packed_data_reads_as_the_plain_bytes() {
        let yaml =
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n".repeat(200);
        let plain = Data::from(yaml.as_str());
        let packed = plain.packed();
        assert!(packed.is_packed());
        assert_eq!(packed.len(), yaml.len());
        assert_eq!(&*packed.bytes(), yaml.as_bytes());
        assert_eq!(&*packed.shared(), yaml.as_bytes());
        assert_eq!(packed, plain);
        assert_eq!(plain, packed);
        // Packing what is packed changes nothing.
        assert!(packed.packed().is_packed());
        assert_eq!(packed.packed(), plain);
        assert_ne!(packed, Data::from(&yaml.as_bytes()[1..]));
    }

    #[test]
    fn small_or_incompressible_files_stay_plain() {
        let small = Data::from("a: 1\n".repeat(10).as_str());
        assert!(!small.packed().is_packed());
        // Bytes that deflate cannot shrink (a xorshift stream, as a compressed file is).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let data = Data::from(noise.clone());
        let kept = data.packed();
        assert!(!kept.is_packed());
        assert_eq!(&*kept.bytes(), &noise[..]);
        // Plain data is borrowed, not copied.
        assert!(matches!(data.bytes(), std::borrow::Cow::Borrowed(_)));
        assert!(std::sync::Arc::ptr_eq(&data.shared(), &data.shared()));
    }

    #[test]
    fn empty_and_debug() {
        let empty = Data::from(Vec::new());
        assert!(empty.is_empty() && !empty.packed().is_packed());
        assert_eq!(format!("{:?}", Data::from("x")), "\"x\"");
        let big = Data::from("y".repeat(1000).as_str()).packed();
        assert!(format!("{big:?}").starts_with("<1000 bytes, packed in "));
    }
}
